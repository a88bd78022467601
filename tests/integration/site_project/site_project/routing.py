"""Routing of the site project; other URLs go to Django's views."""

from channels_core import route, route_class

from .consumers import Echo, Hello, Json, Room, crash, database_name, silent

channel_routing = [
    route_class(Hello, path=r"^/hello/$"),
    route("http.request", crash, path=r"^/crash/$"),
    route("http.request", silent, path=r"^/silent/$"),
    route("http.request", database_name, path=r"^/database-name/$"),
    route_class(Echo, path=r"^/ws/echo/$"),
    route_class(Room, path=r"^/ws/room/(?P<room>\w+)/$"),
    route_class(Json, path=r"^/ws/json/$"),
]
