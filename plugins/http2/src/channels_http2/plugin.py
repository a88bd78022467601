"""The hook implementations: the ``http2`` protocol and its options.

``http2`` has no listener of its own: it takes connections from the ``http`` protocol's
listeners (it ``requires`` it), those whose TLS handshake negotiated ``h2`` by ALPN and those
that open with HTTP/2's connection preface in cleartext ("prior knowledge"). The
``Upgrade: h2c`` dance of HTTP/1.1 is not offered: browsers never use it, curl and httpx
speak prior knowledge, and RFC 9113 deprecated it. Its one listener is a task that sends
GOAWAY to every HTTP/2 connection when the server begins to drain.
"""

from __future__ import annotations

from typing import Any

from channels_core import hookimpl
from channels_core.protocols import Option, ProtocolSpec

#: What every HTTP/2 client sends first (RFC 9113, section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NAME = "http2"

OPTIONS = (
    Option("max_concurrent_streams", help="SETTINGS_MAX_CONCURRENT_STREAMS: the requests one "
           "connection may have open at once; further ones are refused (REFUSED_STREAM).",
           default=100, type=int, minimum=1, maximum=2**31 - 1,
           flags=("--http2-max-concurrent-streams",)),
    Option("max_header_list_size", help="SETTINGS_MAX_HEADER_LIST_SIZE: the largest decoded "
           "header list of a request, in bytes; larger is a connection error.",
           default=65536, type=int, minimum=1024, flags=("--http2-max-header-list-size",)),
    Option("max_frame_size", help="SETTINGS_MAX_FRAME_SIZE: the largest frame payload the "
           "server accepts, in bytes (16384 to 16777215).", default=16384, type=int,
           minimum=16384, maximum=16777215, flags=("--http2-max-frame-size",)),
    Option("initial_window_size", help="SETTINGS_INITIAL_WINDOW_SIZE: how many body bytes a "
           "client may send on a stream before the server asks for more.", default=65535,
           type=int, minimum=1, maximum=2**31 - 1, flags=("--http2-initial-window-size",)),
    Option("max_resets", help="Streams a client may reset within 10 seconds on one "
           "connection before it is closed with ENHANCE_YOUR_CALM (rapid reset).",
           default=200, type=int, minimum=1, flags=("--http2-max-resets",)),
    Option("websocket", help="Offer WebSocket over HTTP/2 (RFC 8441, extended CONNECT) when "
           "the websocket protocol is enabled.", default=True, type=bool,
           flags=("--http2-websocket",)),
)  # fmt: skip


def accept_connection(server: Any, transport: Any) -> Any:
    """The :data:`~channels_core.protocols.ConnectionHandler`: an HTTP/2 connection."""
    from .connection import H2Protocol

    return H2Protocol(server)


def listeners(server: Any) -> list:
    """A task that sends GOAWAY to every HTTP/2 connection when the server drains."""
    from channels_core.listeners import TaskListener

    from .connection import go_away_on_drain

    return [TaskListener(go_away_on_drain, description="http2 connections (GOAWAY on drain)")]


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``http2`` protocol."""
    register(
        ProtocolSpec(
            name=NAME,
            listeners=listeners,
            # Its requests and replies are the http protocol's own channels (http.request,
            # http.response!), which http declares: one protocol owns each reply prefix.
            options=OPTIONS,
            requires=("http",),
            alpn="h2",
            preface=PREFACE,
            accept_connection=accept_connection,
            description="HTTP/2 on the http listeners (h2 by ALPN, cleartext prior knowledge), "
            "and WebSocket over HTTP/2 (RFC 8441).",
        )
    )


@hookimpl
def channels_shutdown(server) -> None:
    """Close what is left of the HTTP/2 connections once the work in flight is done."""
    from .connection import close_all

    close_all(server)
