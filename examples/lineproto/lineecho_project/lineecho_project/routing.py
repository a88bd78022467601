"""Routing of the lineecho test project."""

from channels_core import route

from .consumers import echo, join, say

channel_routing = [
    route("lineecho.receive", join, line=r"^join (?P<room>\w+)$"),
    route("lineecho.receive", say, line=r"^say (?P<room>\w+) (?P<text>.+)$"),
    route("lineecho.receive", echo),
]
