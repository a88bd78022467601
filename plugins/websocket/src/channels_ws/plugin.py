"""The hook implementations: what makes ``websocket`` a Channels protocol."""

from __future__ import annotations

from typing import Any

from channels_core import hookimpl
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec

MIB = 1 << 20
CONNECTION_KEYS = ("reply_channel", "path", "order")
SECONDS = "it must be a number more than zero: seconds, such as 20."
BYTES = "it must be a number more than zero: bytes, such as 1048576."


def _no_listeners(server: Any) -> list:
    """WebSocket rides on the HTTP listener's upgrade path: no listener of its own."""
    return []


def _accept_upgrade(server: Any, request: Any, transport: Any) -> Any:
    """Import the Twisted adapter only when a connection arrives."""
    from .protocol import accept_upgrade

    return accept_upgrade(server, request, transport)


def _asgi_adapter(host: Any, app: Any) -> Any:
    """``channels serve module:app``: every WebSocket connection goes to the ASGI app."""
    from .asgi import AsgiWebsocketBridge

    return AsgiWebsocketBridge(app).dispatch


async def _serve_websocket(host: Any, scope: dict, receive: Any, send: Any) -> None:
    """ChannelsApplication's ``websocket`` scopes: events go to the routed consumers."""
    from .asgi import serve_websocket

    await serve_websocket(host, scope, receive, send)


OPTIONS = (
    Option(
        "timeout",
        help="Close a connection this many seconds after it opened (0: never).",
        default=86400,
        type=float,
        minimum=0,
        flags=("--websocket-timeout",),
        fix="it must be a number zero or more: seconds, or 0 for never.",
    ),
    Option(
        "connect_timeout",
        help="Refuse a connection no consumer accepted within this many seconds.",
        default=5.0,
        type=float,
        above=0,
        flags=("--websocket-connect-timeout",),
        fix=SECONDS,
    ),
    Option(
        "ping_interval",
        help="Ping every open connection this often, in seconds.",
        default=20.0,
        type=float,
        above=0,
        flags=("--ping-interval",),
        fix=SECONDS,
    ),
    Option(
        "ping_timeout",
        help="Drop a connection silent this long after a ping, in seconds.",
        default=30.0,
        type=float,
        above=0,
        flags=("--ping-timeout",),
        fix=SECONDS,
    ),
    Option(
        "max_message_size",
        help="The largest message accepted, in bytes (after decompression); larger: close 1009.",
        default=MIB,
        type=int,
        above=0,
        flags=("--websocket-max-message-size",),
        fix=BYTES,
    ),
    Option(
        "max_frame_size",
        help="The largest frame accepted, in bytes; larger: close 1009.",
        default=MIB,
        type=int,
        above=0,
        flags=("--websocket-max-frame-size",),
        fix=BYTES,
    ),
    Option(
        "compression",
        help="Accept permessage-deflate when the client offers it (on or off).",
        default=True,
        type=bool,
        flags=("--websocket-compression",),
    ),
    Option(
        "allowed_origins",
        help="Hosts a browser's Origin may name, as in ALLOWED_HOSTS (default: ALLOWED_HOSTS).",
        default=None,
        flags=("--websocket-allowed-origin",),
        multiple=True,
        fix="make it a list of host names as in ALLOWED_HOSTS, such as ['example.com', "
        "'.example.org'], or None to use ALLOWED_HOSTS.",
    ),
)


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``websocket`` protocol: the HTTP listener's ``Upgrade: websocket`` requests."""
    register(
        ProtocolSpec(
            name="websocket",
            listeners=_no_listeners,
            emits=("websocket.connect", "websocket.receive", "websocket.disconnect"),
            consumes=("websocket.send!",),
            options=OPTIONS,
            requires=("http",),
            upgrade="websocket",
            accept_upgrade=_accept_upgrade,
            asgi_adapter=_asgi_adapter,
            asgi_scope="websocket",
            serve_asgi=_serve_websocket,
            description="WebSocket (RFC 6455, permessage-deflate) on the HTTP listener.",
        )
    )


@hookimpl
def channels_register_channels(register) -> None:
    """The events a WebSocket emits and the reply channels consumers answer on."""
    register(
        ChannelSpec(
            "websocket.connect",
            sent_by="protocol",
            keys=(*CONNECTION_KEYS, "query_string", "headers", "client", "server"),
            optional_keys=("subprotocols",),
            description="A client asks to open a WebSocket; answer with accept on reply_channel.",
        )
    )
    register(
        ChannelSpec(
            "websocket.receive",
            sent_by="protocol",
            keys=CONNECTION_KEYS,
            optional_keys=("text", "bytes"),
            description="A message from the client: text or bytes.",
        )
    )
    register(
        ChannelSpec(
            "websocket.disconnect",
            sent_by="protocol",
            keys=(*CONNECTION_KEYS, "code"),
            description="The connection closed; code is the close code (1006: dropped).",
        )
    )
    register(
        ChannelSpec(
            "websocket.send!",
            sent_by="consumer",
            optional_keys=("accept", "subprotocol", "text", "bytes", "close"),
            description="Accept or refuse, send text or bytes, close (True or a code).",
        )
    )


@hookimpl
def channels_register_consumers(register) -> None:
    """The WebsocketConsumer family and the WebSocket auth decorators."""
    from . import auth, consumers

    for name in consumers.__all__:
        register(name, getattr(consumers, name))
    for name in auth.__all__:
        register(name, getattr(auth, name))


@hookimpl
def channels_startup(server) -> None:
    """Build the hub (reading ALLOWED_HOSTS) at start-up rather than on the first connection."""
    # Workers run this hook too; only a protocol server serving WebSocket has a hub.
    if server.kind == "server" and server.upgrade_handler("websocket") is _accept_upgrade:
        from .hub import hub_for

        hub_for(server)


@hookimpl
def channels_shutdown(server) -> None:
    """Close every WebSocket with 1001 (going away), or 1012 (service restart) when the
    server drains for a restart: clients then reconnect at once, to another process."""
    from .hub import existing_hub

    hub = existing_hub(server)
    if hub is not None:
        hub.shutdown(restarting=server.restarting)
