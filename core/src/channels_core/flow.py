"""Write flow control: what a connection has not yet sent stays bounded.

A client that does not read (or reads slower than its consumers send) leaves the bytes written
to it in the server's memory. :class:`WriteFlow` watches one connection's outgoing buffer,
through Twisted's own producer interface: registered as the transport's streaming producer,
it is paused by Twisted when the transport holds more than the high-water mark and resumed
once the transport's buffer is empty again. While a connection is paused (``WRITE_BUFFER`` in
``CHANNELS``, see :class:`~channels_core.limits.WriteLimits`):

- a consumer's send to its reply channel from this process waits until the buffer drained
  (backpressure);
- a message for it that comes through the layer (group sends, other processes, worker mode)
  is dropped when the protocol says it may be (its data, never its control messages), and
  counted in ``host.counters`` (``dropped``, by reply-channel prefix), as a full channel
  refuses; the first drop of a connection is logged;
- when it stays paused for longer than ``timeout`` seconds (its client has not read the
  buffer empty), or what it holds passes the hard ``limit`` (messages that are never held
  back, such as control messages and HTTP response parts from workers, can take it past the
  mark), the protocol's ``overflow`` callback closes it (WebSocket 1008, an HTTP response
  aborted), logged once. Sends still waiting are then let go, to a connection that is
  closing: they are dropped, as any send to a connection that is gone.

So a client that does not read costs at most ``limit`` bytes and one message.

A protocol plugin gets one with :meth:`ProtocolServer.write_flow
<channels_core.server.ProtocolServer.write_flow>` when its connection opens, writes with
:meth:`WriteFlow.write`, and calls :meth:`WriteFlow.detach` when it hands the transport to
another protocol (an upgrade). The connection's end stops it (Twisted calls
``stopProducing``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from . import local
from .counters import count, reply_family
from .limits import WriteLimits
from .transport import write

if TYPE_CHECKING:
    from .host import Host

logger = logging.getLogger(__name__)


def _socket_transport(transport: Any) -> Any:
    """The transport that owns the socket's buffer: under TLS, the one TLS writes to."""
    while not isinstance(transport, FileDescriptor):
        inner = getattr(transport, "transport", None)
        if inner is None:
            return None
        transport = inner
    return transport


@implementer(IPushProducer)
class WriteFlow:
    """One connection's outgoing buffer, watched; see the module docstring.

    :param host: the server (for its counters and loop).
    :param transport: the connection's Twisted transport.
    :param reply_channel: the connection's reply channel: sends to it wait while paused
        ("" for a connection whose reply channels are its streams', each with a flow of its
        own: its flow only closes it when its socket's buffer overflows).
    :param limits: the :class:`~channels_core.limits.WriteLimits`.
    :param overflow: called once when the connection stayed paused past ``timeout`` or
        passed ``limit``; it closes the connection.
    :param droppable: ``droppable(content)``: True for a message through the layer that may
        be dropped while paused (data, not control); None drops nothing.
    :param describe: how the log lines name the connection (``"the WebSocket on /chat/"``).
    """

    def __init__(
        self,
        host: Host,
        transport: Any,
        reply_channel: str,
        limits: WriteLimits,
        overflow: Callable[[], None],
        droppable: Callable[[dict], bool] | None = None,
        describe: str = "a connection",
    ) -> None:
        self.host = host
        self.transport = transport
        self.reply_channel = reply_channel
        self.limits = limits
        self.overflow = overflow
        self.droppable = droppable
        self.describe = describe
        #: True while Twisted holds more than the high-water mark for this connection.
        self.paused = False
        #: Messages through the layer dropped while paused.
        self.dropped = 0
        # Bytes written since the pause: with the high-water mark, a bound on what is held.
        self._since_pause = 0
        self._drained: asyncio.Future | None = None
        self._stuck: asyncio.TimerHandle | None = None
        self._overflowed = False
        self._registered = False
        # A transport with no socket buffer of its own (a stream of an HTTP/2 connection)
        # holds what it cannot send yet itself, and reports its size with held(); with no
        # transport at all (None), the protocol does.
        sock = _socket_transport(transport)
        if transport is not None and hasattr(transport, "registerProducer"):
            try:
                transport.registerProducer(self, True)
            except RuntimeError:  # a producer of another protocol's is registered
                logger.debug("Not watching the writes of %s: it has a producer.", describe)
            else:
                if sock is not None:
                    sock.bufferSize = limits.high_water
                self._registered = True

    # What the protocol calls ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write *data* to the connection (straight to the socket when nothing is queued)."""
        write(self.transport, data)
        if self.paused:
            self._since_pause += len(data)
            if self._since_pause + self.limits.high_water > self.limits.limit:
                self._overflow(f"more than {self.limits.limit} unsent bytes")

    def held(self, size: int) -> None:
        """For a protocol that holds bytes itself rather than in the transport (an HTTP/2
        stream waiting for the client's flow-control window): *size* bytes are held now.

        Past the high-water mark the connection is paused, as by Twisted; at zero it is
        resumed; past the limit it overflows.
        """
        if size > self.limits.limit:
            self._overflow(f"more than {self.limits.limit} unsent bytes")
        elif size > self.limits.high_water:
            self.pauseProducing()
        elif not size:
            self._resume()

    def detach(self) -> None:
        """Stop watching: the transport goes to another protocol, which watches it itself."""
        if self._registered:
            self._registered = False
            self.transport.unregisterProducer()
        self._resume()

    async def writable(self) -> None:
        """Wait until the buffer drained, or the connection is closed for not draining it
        (within ``timeout`` seconds, then)."""
        if not self.paused or self._overflowed:
            return
        if self._drained is None:
            self._drained = self.host.loop.create_future()
        await asyncio.shield(self._drained)

    def drop(self, content: dict) -> bool:
        """Whether *content*, which came through the layer, is dropped (and counted)."""
        if self.droppable is None or not self.droppable(content):
            return False
        if not self.dropped:
            logger.warning(
                "Dropping messages for %s: its client does not read what it is sent "
                "(over %d bytes unsent). Counted in dropped; logged once per connection.",
                self.describe,
                self.limits.high_water,
            )
        self.dropped += 1
        count(self.host.counters._dropped, reply_family(self.reply_channel))
        return True

    # IPushProducer: what Twisted calls --------------------------------------------------

    def pauseProducing(self) -> None:
        """Twisted holds more than the high-water mark for the connection."""
        if self.paused:
            return
        self.paused = True
        self._since_pause = 0
        if self.reply_channel:
            local.pause(self.reply_channel, self)
        self._stuck = self.host.loop.call_later(self.limits.timeout, self._timed_out)

    def resumeProducing(self) -> None:
        """Twisted's buffer for the connection is empty again."""
        self._resume()

    def stopProducing(self) -> None:
        """The connection is gone."""
        self._registered = False
        self._resume()

    def _resume(self) -> None:
        if self._stuck is not None:
            self._stuck.cancel()
            self._stuck = None
        if not self.paused:
            return
        self.paused = False
        if self.reply_channel:
            local.resume(self.reply_channel)
        self._release()

    def _release(self) -> None:
        """Let the sends waiting for the buffer go on."""
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _timed_out(self) -> None:
        self._stuck = None
        if self.paused:
            self._overflow(
                f"over {self.limits.high_water} unsent bytes for {self.limits.timeout} s"
            )

    def _overflow(self, why: str) -> None:
        if self._overflowed:
            return
        self._overflowed = True
        logger.warning(
            "Closing %s: its client does not read what it is sent (%s).", self.describe, why
        )
        self._release()
        self.overflow()
