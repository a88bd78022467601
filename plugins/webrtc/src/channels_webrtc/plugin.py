"""The hook implementations: the ``webrtc`` protocol, its options, channels and consumers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels_core import hookimpl
from channels_core.listeners import ServiceListener
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec

# aiortc's own receive limit (what it announces in SDP when nobody says otherwise).
DEFAULT_MAX_MESSAGE_SIZE = 262144
EVENT_KEYS = ("reply_channel", "peer", "label")


def _ice_server(entry: Any) -> None:
    if isinstance(entry, str):
        if not entry.startswith(("stun:", "stuns:", "turn:", "turns:")):
            raise ValueError
    elif not isinstance(entry, Mapping) or not isinstance(entry.get("urls"), (str, list)):
        raise ValueError


def _not_empty(value: str) -> None:
    if not value:
        raise ValueError


WHOLE_NUMBER = "set it to a positive whole number, such as 1000."

OPTIONS = (
    Option("ice_servers", help="A STUN or TURN server URL for the peers (repeatable); none "
           "given: aiortc's default public STUN server; an empty list in settings: none.",
           default=None, type=object, flags=("--webrtc-ice-server",), multiple=True,
           validator=_ice_server, fix="set it to a list of URLs such as "
           "['stun:stun.example.org:3478'] or dicts with 'urls', 'username' and 'credential'; "
           "[] for none, None for aiortc's default."),
    Option("host_addresses", help="An address to gather host candidates on (repeatable); none "
           "given: every interface's address but loopback.", default=None,
           flags=("--webrtc-host-address",), multiple=True, validator=_not_empty,
           fix="set it to a list of IP addresses such as ['127.0.0.1'], or None for every "
           "interface."),
    Option("max_message_size", help="The largest data-channel message accepted, in bytes "
           "(announced in the answer; a larger one closes its data channel).",
           default=DEFAULT_MAX_MESSAGE_SIZE, type=int, above=0, fix=WHOLE_NUMBER,
           flags=("--webrtc-max-message-size",)),
    Option("max_peers", help="The most peers this server holds; more offers get 503.",
           default=1000, type=int, above=0, fix=WHOLE_NUMBER, flags=("--webrtc-max-peers",)),
    Option("connect_timeout", help="Close a peer not connected this many seconds after its "
           "answer.", default=30.0, type=float, above=0, flags=("--webrtc-connect-timeout",),
           fix="set it to a positive number of seconds, such as 30."),
)  # fmt: skip


def listeners(server: Any) -> list:
    """The peer hub, run on the event loop as a service."""
    from .peers import PeerHub

    hub = PeerHub(server)
    return [ServiceListener(hub.start, hub.stop, description=hub.describe())]


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``webrtc`` protocol."""
    register(
        ProtocolSpec(
            name="webrtc",
            listeners=listeners,
            emits=("webrtc.connect", "webrtc.receive", "webrtc.disconnect"),
            consumes=("webrtc.send!", "webrtc.offer"),
            options=OPTIONS,
            description="WebRTC data channels (aiortc); offers arrive on webrtc.offer.",
        )
    )


@hookimpl
def channels_register_channels(register) -> None:
    """The data-channel events, their reply channels, and the offers the server answers."""
    register(
        ChannelSpec(
            "webrtc.connect",
            sent_by="protocol",
            keys=EVENT_KEYS,
            description="A client opened a data channel (label) on its peer connection (peer).",
        )
    )
    register(
        ChannelSpec(
            "webrtc.receive",
            sent_by="protocol",
            keys=EVENT_KEYS,
            optional_keys=("text", "bytes"),
            description="A data-channel message: text or bytes.",
        )
    )
    register(
        ChannelSpec(
            "webrtc.disconnect",
            sent_by="protocol",
            keys=EVENT_KEYS,
            description="The data channel closed, or its peer went away.",
        )
    )
    register(
        ChannelSpec(
            "webrtc.send!",
            sent_by="consumer",
            optional_keys=("text", "bytes", "close"),
            description="Send text or bytes on the data channel; close: True closes it.",
        )
    )
    register(
        ChannelSpec(
            "webrtc.offer",
            sent_by="consumer",
            keys=("reply_channel", "signalling", "offer"),
            description="An SDP offer (JSON text) for the server; the answer goes to "
            "reply_channel as an HTTP response or WebSocket text (signalling).",
        )
    )


@hookimpl
def channels_register_consumers(register) -> None:
    """The HTTP and WebSocket signalling consumers."""
    from .signalling import SignallingConsumer, offer_consumer

    register("webrtc_offer_consumer", offer_consumer)
    register("WebRTCSignallingConsumer", SignallingConsumer)
