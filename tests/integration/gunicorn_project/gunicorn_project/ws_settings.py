"""The WebSocket test project's settings, with ``/pid/``."""

from ws_project.settings import *  # noqa: F403

CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "gunicorn_project.routing.ws_routing"},
}
