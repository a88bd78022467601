"""Routing of the broadcast benchmark project."""

from channels_core import route_class

from .consumers import Broadcast

channel_routing = [route_class(Broadcast, path=r"^/broadcast/$")]
