"""The original Channels entry point: ``channels serve lineecho_project.asgi:channel_layer``."""

from channels_core import get_channel_layer

channel_layer = get_channel_layer()
