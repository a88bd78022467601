"""WebRTC data channels for Channels, on aiortc; see ``docs/webrtc.md``.

The plugin is :mod:`channels_webrtc.plugin`; the signalling consumers a project routes are
:func:`~channels_webrtc.signalling.offer_consumer` (HTTP) and
:class:`~channels_webrtc.signalling.SignallingConsumer` (WebSocket).
"""

from .signalling import SignallingConsumer, offer_consumer

__all__ = ["SignallingConsumer", "offer_consumer"]
