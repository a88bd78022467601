"""Signalling over HTTP and WebSocket, and the echo consumers."""

from channels_core.routing import route, route_class
from channels_webrtc import SignallingConsumer, offer_consumer

from . import consumers

channel_routing = [
    route("http.request", offer_consumer, path=r"^/webrtc/offer$"),
    route_class(SignallingConsumer, path=r"^/webrtc/ws$"),
    route("webrtc.connect", consumers.connect),
    route("webrtc.receive", consumers.receive),
    route("webrtc.disconnect", consumers.disconnect),
]
