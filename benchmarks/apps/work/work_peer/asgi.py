"""The ASGI application: the work consumer on HTTP, the working echo on WebSocket."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "work_peer.settings")

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import Work, WorkEcho  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter([path("work/", Work.as_asgi())]),
        "websocket": URLRouter([path("echo/", WorkEcho.as_asgi())]),
    }
)
