"""The demo's channel routing: WebSocket connections to rooms. HTTP goes to Django's views."""

from channels_core import route_class

from .consumers import ChatConsumer
from .models import ROOM_PATTERN

channel_routing = [
    route_class(ChatConsumer, path=rf"^/ws/rooms/(?P<room>{ROOM_PATTERN})/$"),
]
