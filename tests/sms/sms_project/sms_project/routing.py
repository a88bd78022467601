"""Routing of the SMS test project."""

from channels_core import route

from .consumers import receive, status

channel_routing = [
    route("sms.receive", receive),
    route("sms.status", status),
]
