"""The demo's pages. WebSocket paths (``/ws/...``) are in ``chat.routing``."""

from django.urls import path, re_path

from . import views
from .models import ROOM_PATTERN

urlpatterns = [
    path("", views.index, name="index"),
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-out/", views.sign_out, name="sign_out"),
    re_path(rf"^rooms/(?P<room>{ROOM_PATTERN})/$", views.room, name="room"),
    path("static/<path:name>", views.asset, name="asset"),
]
