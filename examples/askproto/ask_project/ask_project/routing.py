"""Routing of the ask project: questions no route matches are answered NO CONSUMER."""

from channels_core import route

from .consumers import add, ignore, shout, slowly

channel_routing = [
    route("ask.request", add, question=r"^what is (?P<a>-?\d+) plus (?P<b>-?\d+)\??$"),
    route("ask.request", shout, question=r"^shout (?P<text>.+)$"),
    route("ask.request", slowly, question=r"^slowly (?P<text>.+)$"),
    route("ask.request", ignore, question=r"^ignore\b"),
]
