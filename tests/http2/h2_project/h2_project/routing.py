"""Routing of the HTTP/2 test project."""

from channels_core import route_class

from .consumers import BadHeader, Big, Echo, Info, Refuse, Slow, Stream

channel_routing = [
    route_class(Info, path=r"^/info/$"),
    route_class(Stream, path=r"^/stream/$"),
    route_class(Big, path=r"^/big/$"),
    route_class(Slow, path=r"^/slow/$"),
    route_class(BadHeader, path=r"^/bad-header/$"),
    route_class(Echo, path=r"^/ws/echo/$"),
    route_class(Refuse, path=r"^/ws/refuse/$"),
]
