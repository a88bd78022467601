"""Routing of the ticker project."""

from channels_core import route

from .consumers import record

channel_routing = [route("ticker.tick", record)]
