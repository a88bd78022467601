"""Routing of the UDP benchmark project."""

from channels_core import route

from .consumers import echo

channel_routing = [route("udp.receive", echo)]
