"""Routing of the benchmark project."""

from channels_core import route_class

from .consumers import Echo, Flood, Hello, Recover

channel_routing = [
    route_class(Hello, path=r"^/hello/$"),
    route_class(Echo, path=r"^/echo/$"),
    route_class(Recover, path=r"^/recover/$"),
    route_class(Flood, path=r"^/flood/$"),
]
