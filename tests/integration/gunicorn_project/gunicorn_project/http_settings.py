"""The HTTP test project's settings, with ``/pid/``."""

from http_project.settings import *  # noqa: F403

CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "gunicorn_project.routing.http_routing"},
}
