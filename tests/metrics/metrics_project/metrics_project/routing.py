"""Routing of the metrics test project."""

from channels_core import route

from .consumers import echo, hello, slow

channel_routing = [
    route("http.request", hello, path=r"^/hello/$"),
    route("http.request", slow, path=r"^/slow/$"),
    route("websocket.receive", echo, path=r"^/echo/$"),
]
