"""The hello example's routing: one channel, one consumer."""

from channels_core import route

from .consumers import greet

channel_routing = [
    route("hello", greet),
]
