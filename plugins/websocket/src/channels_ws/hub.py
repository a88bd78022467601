"""What a running server shares between its WebSocket connections.

One :class:`Hub` per :class:`~channels_core.server.ProtocolServer`: the checked options, the
set of open connections, one keepalive sweep for all of them (no timer per connection), the
emit path, and the shut-down that closes every socket with 1001.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from channels_core.exceptions import ImproperlyConfigured
from channels_core.protocols import is_positive_number

if TYPE_CHECKING:
    from .protocol import WebSocketProtocol

logger = logging.getLogger(__name__)

PROTOCOL = "websocket"
# Django's hosts when ALLOWED_HOSTS is empty and DEBUG is on.
DEBUG_HOSTS = (".localhost", "127.0.0.1", "[::1]")
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _positive(name: str, value: Any, allow_zero: bool = False) -> float:
    if not is_positive_number(value, zero=allow_zero):
        allowed = "zero or more" if allow_zero else "more than zero"
        raise ImproperlyConfigured(
            f"CHANNELS['OPTIONS']['websocket'][{name!r}] is {value!r}; it must be a number "
            f"{allowed}."
        )
    return value


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
        self.timeout = _positive("timeout", option(PROTOCOL, "timeout"), allow_zero=True)
        self.connect_timeout = _positive("connect_timeout", option(PROTOCOL, "connect_timeout"))
        self.ping_interval = _positive("ping_interval", option(PROTOCOL, "ping_interval"))
        self.ping_timeout = _positive("ping_timeout", option(PROTOCOL, "ping_timeout"))
        self.max_message_size = int(
            _positive("max_message_size", option(PROTOCOL, "max_message_size"))
        )
        self.max_frame_size = int(_positive("max_frame_size", option(PROTOCOL, "max_frame_size")))
        self.compression = bool(option(PROTOCOL, "compression"))
        origins = option(PROTOCOL, "allowed_origins")
        if origins is not None and (
            isinstance(origins, str) or not all(isinstance(host, str) for host in origins)
        ):
            raise ImproperlyConfigured(
                f"CHANNELS['OPTIONS']['websocket']['allowed_origins'] is {origins!r}; make it a "
                "list of host names as in ALLOWED_HOSTS, such as ['example.com', '.example.org']."
            )
        self.allowed_hosts = tuple(origins) if origins is not None else default_allowed_hosts()
        self.connections: set[WebSocketProtocol] = set()
        self._sweeping: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        dispatcher = server.dispatcher
        asgi_app = getattr(server, "asgi_app", None)
        # In-process, run the consumer with reraise so a failure can close its connection
        # with 1011; in worker mode the event goes on the layer and the worker logs failures.
        # ``channels serve module:application`` gives every connection to that application.
        if asgi_app is not None:
            from .asgi import AsgiWebsocketBridge

            self._dispatch = AsgiWebsocketBridge(asgi_app).dispatch
        elif dispatcher is not None:
            self._dispatch = dispatcher.dispatch
        else:
            self._dispatch = None
            self._layer_send = server.layer.send

    async def emit(self, channel: str, content: dict) -> bool:
        """Hand an event to its consumer; False when no route matched (in-process only).

        In-process, the consumer's exception propagates to the caller.
        """
        if self._dispatch is not None:
            return await self._dispatch(channel, content, reraise=True)
        await self._layer_send(channel, content)
        return True

    def spawn(self, coroutine: Any) -> None:
        """Run *coroutine* as a task the hub keeps alive until it ends."""
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    def shutdown(self) -> None:
        """Close every connection with 1001 (going away) and stop the keepalive sweep."""
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
        for connection in list(self.connections):
            connection.going_away()


def hub_for(server: Any) -> Hub:
    """The :class:`Hub` of *server*, built (and its options checked) on first use."""
    hub = _hubs.get(server)
    if hub is None:
        hub = _hubs[server] = Hub(server)
    return hub


def existing_hub(server: Any) -> Hub | None:
    """The hub of *server* if one was built."""
    return _hubs.get(server)
