"""Routing of the processes benchmark project."""

from channels_core import route_class

from .consumers import Work, WorkEcho

channel_routing = [
    route_class(Work, path=r"^/work/$"),
    route_class(WorkEcho, path=r"^/echo/$"),
]
