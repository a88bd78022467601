"""The routing of the --processes test project."""

from channels_core import route, route_class

from .consumers import Room, Who, udp_pid

channel_routing = [
    route_class(Who, path=r"^/who/$"),
    route_class(Room, path=r"^/ws/room/$"),
    route("udp.receive", udp_pid),
]
