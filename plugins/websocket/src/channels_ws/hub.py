"""What a running server shares between its WebSocket connections.

One :class:`Hub` per :class:`~channels_core.server.ProtocolServer`: the options, the set of
open connections, one keepalive sweep for all of them (no timer per connection), and the
shut-down that closes every socket with 1001. Events go to the server (the host) itself.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from .frames import GOING_AWAY, SERVICE_RESTART

if TYPE_CHECKING:
    from .protocol import WebSocketProtocol

logger = logging.getLogger(__name__)

PROTOCOL = "websocket"
# Django's hosts when ALLOWED_HOSTS is empty and DEBUG is on.
DEBUG_HOSTS = (".localhost", "127.0.0.1", "[::1]")
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def default_allowed_hosts() -> tuple[str, ...] | None:
    """Django's ``ALLOWED_HOSTS`` (its DEBUG defaults when empty); None without settings."""
    from django.conf import settings

    if not settings.configured:
        return None
    hosts = tuple(settings.ALLOWED_HOSTS)
    if not hosts and settings.DEBUG:
        return DEBUG_HOSTS
    return hosts


class Hub:
    """The WebSocket side of one server; :func:`hub_for` builds it from the server's options."""

    def __init__(self, server: Any) -> None:
        option = server.option
        self.server = server
        self.loop = server.loop
        self.timeout = option(PROTOCOL, "timeout")
        self.connect_timeout = option(PROTOCOL, "connect_timeout")
        self.ping_interval = option(PROTOCOL, "ping_interval")
        self.ping_timeout = option(PROTOCOL, "ping_timeout")
        self.max_message_size = option(PROTOCOL, "max_message_size")
        self.max_frame_size = option(PROTOCOL, "max_frame_size")
        self.compression = option(PROTOCOL, "compression")
        origins = option(PROTOCOL, "allowed_origins")
        self.allowed_hosts = tuple(origins) if origins is not None else default_allowed_hosts()
        self.connections: set[WebSocketProtocol] = set()
        self._sweeping: asyncio.TimerHandle | None = None

    # Open connections and keepalive ------------------------------------------------------

    def opened(self, connection: WebSocketProtocol) -> None:
        """*connection* was accepted: keep it alive with pings, close it at shut-down."""
        self.connections.add(connection)
        if self._sweeping is None:
            self._sweeping = self.loop.call_later(self.ping_interval, self._sweep)

    def closed(self, connection: WebSocketProtocol) -> None:
        """*connection* is gone."""
        self.connections.discard(connection)

    def _sweep(self) -> None:
        """Ping every open connection; drop those silent for ``ping_timeout`` after a ping,
        close those older than ``timeout``."""
        now = self.loop.time()
        for connection in list(self.connections):
            connection.keepalive(now)
        self._sweeping = (
            self.loop.call_later(self.ping_interval, self._sweep) if self.connections else None
        )

    def shutdown(self, restarting: bool = False) -> None:
        """Close every connection with 1001 (going away), or 1012 (service restart) when the
        server is restarting, and stop the keepalive sweep."""
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
        code = SERVICE_RESTART if restarting else GOING_AWAY
        for connection in list(self.connections):
            connection.going_away(code)


def hub_for(server: Any) -> Hub:
    """The :class:`Hub` of *server*, built on first use."""
    hub = _hubs.get(server)
    if hub is None:
        hub = _hubs[server] = Hub(server)
    return hub


def existing_hub(server: Any) -> Hub | None:
    """The hub of *server* if one was built."""
    return _hubs.get(server)
