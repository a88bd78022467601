"""The routing both modes serve: the same consumers in process and in workers."""

from channels_core import route, route_class
from channels_http.asgi import django_views

from .consumers import Echo, Hello, Ordered, Room, slight_connect, slight_receive

channel_routing = [
    route_class(Hello, path=r"^/hello/$"),
    route_class(Echo, path=r"^/ws/echo/$"),
    route_class(Room, path=r"^/ws/room/$"),
    route_class(Ordered, path=r"^/ws/ordered/$"),
    route("websocket.connect", slight_connect, path=r"^/ws/slight/$"),
    route("websocket.receive", slight_receive, path=r"^/ws/slight/$"),
    # Everything else is Django's: in worker mode a worker runs the view.
    route("http.request", django_views),
]
