"""Routes of the write-flow-control test project."""

from channels_core import route, route_class

from .consumers import Blast, Room, stream

channel_routing = [
    route_class(Blast, path=r"^/blast/$"),
    route_class(Room, path=r"^/room/$"),
    route("http.request", stream, path=r"^/stream/$"),
]
