"""Routing of the UDP test project."""

from channels_core import route

from .consumers import echo, join

channel_routing = [
    route("udp.receive", join, data=r"^join (?P<room>\w+)$"),
    route("udp.receive", echo),
]
