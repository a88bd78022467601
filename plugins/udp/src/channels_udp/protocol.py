"""The Twisted adapter: datagrams in as ``udp.receive`` events, replies out as datagrams.

Each listening address is a :class:`UdpListener` whose :class:`UdpEndpoint` keeps one
:class:`Client` per client address it heard from: the client's reply channel (one per
address, so a consumer may answer several times, and group sends reach it) and its
rate-limit bucket. A client silent for ``client_timeout`` seconds is forgotten.

Draining: the listener stops reading when the server drains, keeps its socket open while the
consumers in flight finish and reply, and closes in ``channels_shutdown``.
"""

from __future__ import annotations

import errno
import logging
import time
import weakref
from typing import Any

from twisted.internet.protocol import DatagramProtocol

from channels_core.exceptions import EventRefused
from channels_core.listeners import DatagramListener

from .limits import Occurrences, TokenBucket
from .plugin import RECEIVE, REPLY_PREFIX

logger = logging.getLogger(__name__)

# Repeated trouble (oversized datagrams, a throttled client, a full layer, failed replies) is
# logged at most once per this many seconds per kind, with the count since the last line.
LOG_INTERVAL = 10.0

_listeners: weakref.WeakKeyDictionary[Any, list[UdpListener]] = weakref.WeakKeyDictionary()


def _peer(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Client:
    """A client address the endpoint heard from: its reply channel and its bucket."""

    __slots__ = ("address", "bucket", "endpoint", "reply_channel", "seen", "throttled")

    def __init__(
        self,
        endpoint: UdpEndpoint,
        address: tuple[str, int],
        reply_channel: str,
        bucket: TokenBucket | None,
    ) -> None:
        self.endpoint = endpoint
        self.address = address
        self.reply_channel = reply_channel
        self.bucket = bucket
        self.throttled = Occurrences(LOG_INTERVAL)
        # Set by every datagram, cleared by every sweep: a client still unseen at the next
        # sweep has been silent for at least client_timeout seconds.
        self.seen = True

    def reply(self, content: dict) -> None:
        """A consumer's message on the reply channel: send its ``data`` to the client."""
        self.endpoint.send(self, content)


class UdpEndpoint(DatagramProtocol):
    """One listening socket: datagrams to events, replies to datagrams, and the counts."""

    def __init__(self, server: Any, options: dict[str, Any]) -> None:
        self.server = server
        self.max_datagram_size = options["max_datagram_size"]
        self.rate = options["rate"]
        burst = options["burst"]
        self.burst = burst if burst is not None else max(1, self.rate)
        self.client_timeout = options["client_timeout"]
        self.max_clients = options["max_clients"]
        self.clients: dict[tuple[str, int], Client] = {}
        self.local: list = []
        self.socket: Any = None
        self.name = "udp"
        self.received = 0
        self.sent = 0
        self.oversized = Occurrences(LOG_INTERVAL)
        self.refused = Occurrences(LOG_INTERVAL)
        self.failed = Occurrences(LOG_INTERVAL)
        self.evicted = Occurrences(LOG_INTERVAL)
        self.throttled_total = 0
        self._unrouted_logged = False
        self._sweeper: Any = None

    def startProtocol(self) -> None:
        """The socket is bound: note its address, start forgetting silent clients."""
        host = self.transport.getHost()
        self.local = [host.host, host.port]
        self.socket = self.transport.socket
        self.name = f"udp {_peer((host.host, host.port))}"
        self._sweeper = self.server.loop.call_later(self.client_timeout, self._sweep)

    # Datagrams in -----------------------------------------------------------------------

    def datagramReceived(self, data: bytes, address: tuple[str, int]) -> None:
        """Check the size and the client's rate; emit ``udp.receive``."""
        self.received += 1
        if len(data) > self.max_datagram_size:
            self._dropped_oversized(address)
            return
        client = self.clients.get(address)
        if client is None:
            client = self._new_client(address)
        else:
            client.seen = True
        if client.bucket is not None and not client.bucket.take(time.monotonic()):
            self._dropped_throttled(client)
            return
        self.server.spawn(
            self._emit(
                {
                    "reply_channel": client.reply_channel,
                    "data": data,
                    "client": list(address),
                    "server": list(self.local),
                }
            )
        )

    async def _emit(self, content: dict) -> None:
        try:
            routed = await self.server.emit(RECEIVE, content)
        except EventRefused as error:
            reported = self.refused.add(time.monotonic())
            if reported:
                logger.warning(
                    "%s: the layer refused %d datagram(s) for %s (%s); they were dropped. Run "
                    "more workers, raise the layer's capacity, or bring the layer back (logged "
                    "at most once per %d s).",
                    self.name,
                    reported,
                    RECEIVE,
                    error,
                    LOG_INTERVAL,
                )
            return
        if not routed and not self._unrouted_logged:
            self._unrouted_logged = True
            logger.warning(
                "%s: no consumer is routed for %s, so datagrams are dropped; add "
                "route('%s', consumer) to the routing (logged once).",
                self.name,
                RECEIVE,
                RECEIVE,
            )

    def _new_client(self, address: tuple[str, int]) -> Client:
        if len(self.clients) >= self.max_clients:
            oldest = next(iter(self.clients.values()))
            self._forget(oldest)
            reported = self.evicted.add(time.monotonic())
            if reported:
                logger.warning(
                    "%s remembers max_clients=%d client addresses; forgot %d of the oldest to "
                    "make room (their reply channels now drop replies). Raise "
                    "--udp-max-clients, or lower --udp-client-timeout (logged at most once "
                    "per %d s).",
                    self.name,
                    self.max_clients,
                    reported,
                    LOG_INTERVAL,
                )
        bucket = TokenBucket(self.rate, self.burst, time.monotonic()) if self.rate else None
        client = Client(self, address, "", bucket)
        client.reply_channel = self.server.open_reply(REPLY_PREFIX, client.reply)
        self.clients[address] = client
        return client

    def _dropped_oversized(self, address: tuple[str, int]) -> None:
        reported = self.oversized.add(time.monotonic())
        if reported:
            # The socket reads one byte more than the limit: the real size is not known.
            logger.warning(
                "%s: dropped %d datagram(s) larger than max_datagram_size=%d bytes, the last "
                "one from %s; raise --udp-max-datagram-size to accept them (logged at most "
                "once per %d s).",
                self.name,
                reported,
                self.max_datagram_size,
                _peer(address),
                LOG_INTERVAL,
            )

    def _dropped_throttled(self, client: Client) -> None:
        self.throttled_total += 1
        reported = client.throttled.add(time.monotonic())
        if reported:
            logger.warning(
                "%s: throttling %s, over %g datagrams/s (burst %d): dropped %d datagram(s) "
                "from it (logged at most once per %d s per client).",
                self.name,
                _peer(client.address),
                self.rate,
                self.burst,
                reported,
                LOG_INTERVAL,
            )

    # Replies out ------------------------------------------------------------------------

    def send(self, client: Client, content: dict) -> None:
        """Send ``content["data"]`` to *client* from this socket; log what cannot be sent."""
        data = content.get("data")
        if not isinstance(data, bytes):
            self._failed(
                client,
                f"its data is {type(data).__name__} {data!r:.40}, not bytes: send "
                "{'data': b'...'}",
            )
            return
        try:
            # Straight to the socket: Twisted's write checks the address three times per call,
            # and this address came from recvfrom, so it is valid.
            self.socket.sendto(data, client.address)
        except OSError as error:
            # An unreachable or closed client, or a reply too big: the listener carries on.
            if error.errno == errno.EMSGSIZE:
                self._failed(client, f"{len(data)} bytes is more than one datagram can carry")
            else:
                self._failed(client, str(error))
        else:
            self.sent += 1

    def _failed(self, client: Client, why: str) -> None:
        reported = self.failed.add(time.monotonic())
        if reported:
            logger.error(
                "%s: a reply to %s was not sent: %s (%d failed reply(ies); logged at most "
                "once per %d s).",
                self.name,
                _peer(client.address),
                why,
                reported,
                LOG_INTERVAL,
            )

    # Clients and shut-down --------------------------------------------------------------

    def _forget(self, client: Client) -> None:
        del self.clients[client.address]
        self.server.close_reply(client.reply_channel)

    def _sweep(self) -> None:
        for client in list(self.clients.values()):
            if client.seen:
                client.seen = False
            else:
                self._forget(client)
        self._sweeper = self.server.loop.call_later(self.client_timeout, self._sweep)

    def stop_reading(self) -> None:
        """Take no more datagrams; replies still go out."""
        if self.transport is not None:
            self.transport.stopReading()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def close(self) -> None:
        """Forget every client and log what this socket counted."""
        self.stop_reading()
        for client in list(self.clients.values()):
            self._forget(client)
        logger.info(
            "%s closed: received %d datagrams, dropped %d oversized, %d throttled, %d refused "
            "by the layer; sent %d replies, %d failed.",
            self.name,
            self.received,
            self.oversized.total,
            self.throttled_total,
            self.refused.total,
            self.sent,
            self.failed.total,
        )


class UdpListener(DatagramListener):
    """A listening address of the ``udp`` protocol; drains in two steps (see the module)."""

    def __init__(self, server: Any, host: str, port: int, options: dict[str, Any]) -> None:
        # One byte more than accepted, so an oversized datagram shows as such, not cut short.
        super().__init__(
            host,
            port,
            UdpEndpoint(server, options),
            max_packet_size=options["max_datagram_size"] + 1,
        )

    async def stop(self, server: Any) -> None:
        """Stop reading; the socket stays open for the replies of the work in flight."""
        self.protocol.stop_reading()

    def close(self) -> None:
        """Close the socket (``channels_shutdown``, after the drain)."""
        if self.port is not None:
            self.protocol.close()
            self.port.stopListening()
            self.port = None


def register_listeners(server: Any, listeners: list[UdpListener]) -> None:
    """Remember *server*'s listeners, for :func:`close_listeners`."""
    _listeners.setdefault(server, []).extend(listeners)


def close_listeners(server: Any) -> None:
    """Close the listeners :func:`register_listeners` remembered for *server*."""
    for listener in _listeners.pop(server, ()):
        listener.close()
