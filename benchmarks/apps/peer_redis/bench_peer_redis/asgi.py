"""The ASGI application: the broadcast consumer on ``/broadcast/``."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_peer_redis.settings")

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import Broadcast  # noqa: E402

application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("broadcast/", Broadcast.as_asgi())])}
)
