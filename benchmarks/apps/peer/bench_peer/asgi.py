"""The ASGI application: the hello consumer on HTTP, the echo consumer on WebSocket."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_peer.settings")

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import Echo, Flood, Hello  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter([path("hello/", Hello.as_asgi())]),
        "websocket": URLRouter([path("echo/", Echo.as_asgi()), path("flood/", Flood.as_asgi())]),
    }
)
