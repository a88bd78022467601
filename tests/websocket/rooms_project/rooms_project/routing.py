"""Routes of the rooms project."""

from channels_core import route, route_class

from .consumers import Room, lobby_connect, lobby_receive, whoami

channel_routing = [
    route_class(Room, path=r"^/rooms/(?P<room>[^/]+)/$"),
    route("websocket.connect", lobby_connect, path=r"^/lobby/$"),
    route("websocket.receive", lobby_receive, path=r"^/lobby/$"),
    route("http.request", whoami, path=r"^/whoami/$"),
]
