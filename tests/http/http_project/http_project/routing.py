"""Routing of the HTTP test project; every other path goes to Django."""

from channels_core import route, route_class

from .consumers import Endless, Stream, Wait, crash, echo, hello, meta, release, waiting

channel_routing = [
    route("http.request", hello, path=r"^/hello/$"),
    route("http.request", echo, path=r"^/echo/$"),
    route("http.request", crash, path=r"^/crash/$"),
    route("http.request", release, path=r"^/release/$"),
    route("http.request", waiting, path=r"^/waiting/$"),
    route("http.request", meta, path=r"^/meta/"),
    route_class(Stream, path=r"^/stream/$"),
    route_class(Endless, path=r"^/endless/$"),
    route_class(Wait, path=r"^/wait/$"),
]
