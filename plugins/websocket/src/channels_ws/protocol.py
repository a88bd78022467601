"""The thin Twisted adapter: a connection the HTTP listener handed over, bound to the codec.

The life of a connection: the HTTP listener calls :func:`accept_upgrade`, which returns a
:class:`WebSocketProtocol`; the listener hands it the transport. The protocol checks the
handshake (a bad one gets its HTTP error), binds a reply channel and emits
``websocket.connect`` (order 0). The consumer's ``{"accept": True}`` (or a first ``text`` or
``bytes``) sends the 101 response; ``{"accept": False}`` or ``{"close": True}`` refuses with
403, and so does silence for ``connect_timeout`` seconds. An in-process server with no route
for ``websocket.connect`` accepts, as Channels 1 did.

Each message then becomes ``websocket.receive`` and the end ``websocket.disconnect``. In
process, one connection's events run their consumers one after the other, in order; a
consumer that raises closes its connection with 1011 (or answers the handshake with 500 while
connecting).
"""

from __future__ import annotations

import logging
from collections import deque
from http import HTTPStatus
from typing import Any

from twisted.internet.protocol import Protocol

from channels_core.exceptions import EventRefused
from channels_core.headers import InvalidHeader
from channels_core.protocols import UpgradeRequest
from channels_core.transport import write

from .frames import (
    ABNORMAL_CLOSURE,
    GOING_AWAY,
    INTERNAL_ERROR,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    BinaryMessage,
    Close,
    FrameCodec,
    Ping,
    Pong,
    ProtocolError,
    TextMessage,
    positioned_text,
)
from .handshake import Handshake, HandshakeError, check_request, reject
from .hub import Hub, hub_for

logger = logging.getLogger(__name__)

CONNECT = "websocket.connect"
RECEIVE = "websocket.receive"
DISCONNECT = "websocket.disconnect"
REPLY_PREFIX = "websocket.send"
# How long to wait for the client's answer to our close frame before dropping the socket.
CLOSE_TIMEOUT = 5.0

CONNECTING, OPEN, CLOSING, CLOSED = range(4)


def _droppable(content: dict) -> bool:
    """While the client does not read, a message through the layer that only carries data
    (text or bytes) is dropped; one that accepts or closes never is."""
    return "close" not in content and "accept" not in content


def accept_upgrade(server: Any, request: UpgradeRequest, transport: Any) -> WebSocketProtocol:
    """The :data:`~channels_core.protocols.UpgradeHandler` of the ``websocket`` protocol."""
    return WebSocketProtocol(hub_for(server), request)


class WebSocketProtocol(Protocol):
    """One WebSocket connection; see the module docstring."""

    def __init__(self, hub: Hub, request: UpgradeRequest) -> None:
        self.hub = hub
        self.request: UpgradeRequest | None = request
        self.path = request.path
        self.state = CONNECTING
        self.handshake: Handshake | None = None
        self.codec: FrameCodec | None = None
        self.flow: Any = None
        self.reply_channel = ""
        self.order = 0
        self.close_code = ABNORMAL_CLOSURE
        self.alive = True
        self.idle_since = 0.0
        self.opened_at = 0.0
        self._queue: deque | None = None
        self._stopping: Any = None
        self._timer: Any = None
        self._early = b""

    # From the transport -----------------------------------------------------------------

    def connectionMade(self) -> None:
        """Check the handshake, bind the reply channel, emit ``websocket.connect``."""
        request = self.request
        hub = self.hub
        try:
            self.handshake = check_request(request.method, request.headers, hub.allowed_hosts)
        except HandshakeError as error:
            logger.info("Refused a WebSocket handshake for %s: %s.", request.path, error.reason)
            self.state = CLOSED
            self._refuse(error.status, error.reason)
            return
        self.reply_channel = hub.server.open_reply(REPLY_PREFIX, self.reply)
        self.flow = hub.server.write_flow(
            self.transport,
            self.reply_channel,
            self._overflowed,
            _droppable,
            f"the WebSocket on {request.path}",
        )
        hub.connections.add(self)
        content = {
            "reply_channel": self.reply_channel,
            "path": request.path,
            "query_string": request.query_string,
            "headers": request.headers,
            "order": 0,
            "client": request.client,
            "server": request.server,
        }
        if self.handshake.subprotocols:
            content["subprotocols"] = list(self.handshake.subprotocols)
        self._timer = hub.loop.call_later(hub.connect_timeout, self._connect_timed_out)
        self._emit(CONNECT, content)

    def dataReceived(self, data: bytes) -> None:
        """Parse frames; emit messages, answer pings and closes; close on a bad frame."""
        if self.state != OPEN:
            if self.state == CONNECTING:
                # A client must wait for the 101; keep (boundedly) what came early.
                self._early += data
                if len(self._early) > self.hub.max_frame_size:
                    self._abort("sent more than a frame before the handshake completed")
            elif self.state == CLOSING:
                self._closing_data(data)
            return
        try:
            events = self.codec.receive(data)
        except ProtocolError as error:
            logger.info("Closing a WebSocket on %s with %d: %s.", self.path, error.code, error)
            self.close(error.code)
            return
        for event in events:
            kind = type(event)
            if kind is TextMessage:
                self.order += 1
                self._emit(
                    RECEIVE,
                    {
                        "reply_channel": self.reply_channel,
                        "path": self.path,
                        "order": self.order,
                        "text": event.text,
                    },
                )
            elif kind is BinaryMessage:
                self.order += 1
                self._emit(
                    RECEIVE,
                    {
                        "reply_channel": self.reply_channel,
                        "path": self.path,
                        "order": self.order,
                        "bytes": event.data,
                    },
                )
            elif kind is Pong:
                # Only a pong shows the client reads what it is sent: a client that sends
                # but never reads is dropped after ping_timeout.
                self.alive = True
            elif kind is Ping:
                self.flow.write(self.codec.pong(event.payload))
            elif kind is Close:
                self.close_code = event.code
                self.flow.write(self.codec.close(event.code))
                self.state = CLOSING
                self.transport.loseConnection()
                return

    def _closing_data(self, data: bytes) -> None:
        """After our close frame: wait for the client's, then hang up."""
        try:
            closed = any(type(event) is Close for event in self.codec.receive(data))
        except ProtocolError:
            closed = True  # a broken frame: the client's close frame will not come
        if closed:
            self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        """Unbind the reply channel; emit ``websocket.disconnect`` if connect was emitted."""
        if self._timer is not None:
            # An asyncio TimerHandle: cancelling one that already ran is harmless.
            self._timer.cancel()
        self._timer = None
        emitted = bool(self.reply_channel)
        self.state = CLOSED
        if self.flow is not None:
            self.flow.detach()
        self.hub.connections.discard(self)
        if emitted:
            self.hub.server.close_reply(self.reply_channel)
            self.order += 1
            self._emit(
                DISCONNECT,
                {
                    "reply_channel": self.reply_channel,
                    "path": self.path,
                    "order": self.order,
                    "code": self.close_code,
                },
            )
        else:
            self._stopped()

    def _stopped(self) -> None:
        """The disconnect of a connection closed by the server's shutdown is handled."""
        stopping, self._stopping = self._stopping, None
        if stopping is not None:
            stopping.__exit__(None, None, None)

    # From the consumer ------------------------------------------------------------------

    def reply(self, content: dict) -> None:
        """A message on the reply channel: accept, refuse, send text/bytes, close.

        A bad message is logged, never raised: it may come through the layer, where raising
        would stop the server's reply receiver.
        """
        try:
            self._reply(content)
        except (TypeError, ValueError) as error:
            logger.error("A WebSocket reply to %s was refused: %s", self.reply_channel, error)

    def _reply(self, content: dict) -> None:
        state = self.state
        if state == CONNECTING:
            accept = content.get("accept")
            if accept is False or (accept is None and content.get("close")):
                self._refuse(HTTPStatus.FORBIDDEN, "the consumer refused the connection")
                return
            if accept or "text" in content or "bytes" in content:
                if not self._accept(content.get("subprotocol"), content.get("headers", ())):
                    return
                state = OPEN
            else:
                raise ValueError(
                    f"the connection is not accepted yet and {sorted(content)} neither accepts "
                    "nor refuses it; send {'accept': True} or {'accept': False} first"
                )
        if state != OPEN:
            return
        text = content.get("text")
        if text is not None:
            if "position" in content:  # a group message with history: where it stands
                text = positioned_text(text, content["position"])
            if not isinstance(text, str):
                raise TypeError(f"'text' must be a str, not {type(text).__name__}: {text!r:.60}")
            self.flow.write(self.codec.text(text))
        data = content.get("bytes")
        if data is not None:
            if not isinstance(data, bytes):
                raise TypeError(f"'bytes' must be bytes, not {type(data).__name__}: {data!r:.60}")
            self.flow.write(self.codec.binary(data))
        close = content.get("close")
        if close:
            self.close(NORMAL_CLOSURE if close is True else close)

    def _accept(self, subprotocol: str | None, headers: Any) -> bool:
        """Send the 101 response; False when a header the consumer gave refused it (500)."""
        hub = self.hub
        try:
            response, deflate = self.handshake.accept(subprotocol, hub.compression, headers)
        except InvalidHeader as error:
            logger.error("Refused the WebSocket handshake for %s with 500: %s.", self.path, error)
            self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR, "the application sent an invalid header")
            return False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flow.write(response)
        self.codec = FrameCodec(hub.max_message_size, hub.max_frame_size, deflate)
        self.state = OPEN
        self.request = self.handshake = None
        self.opened_at = self.idle_since = hub.loop.time()
        hub.opened(self)
        early, self._early = self._early, b""
        if early:
            self.dataReceived(early)
        return True

    def _refuse(self, status: int, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state = CLOSING
        write(self.transport, reject(status, reason))
        self.transport.loseConnection()

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close frame with *code* (and *reason*) and hang up once the client
        answers (or after a few seconds)."""
        if self.state != OPEN:
            return
        frame = self.codec.close(code, reason)
        self.state = CLOSING
        self.close_code = code
        self.flow.write(frame)
        self._timer = self.hub.loop.call_later(CLOSE_TIMEOUT, self.transport.abortConnection)

    def _overflowed(self) -> None:
        """The client has not read for too long what it was sent: close with 1008."""
        self.close(POLICY_VIOLATION, "the client does not read what it is sent")

    def _abort(self, why: str) -> None:
        logger.info("Dropping a WebSocket on %s: the client %s.", self.path, why)
        self.state = CLOSING
        self.transport.abortConnection()

    # From the hub -----------------------------------------------------------------------

    def _connect_timed_out(self) -> None:
        self._timer = None
        if self.state == CONNECTING:
            logger.info(
                "No consumer answered websocket.connect for %s within %s s; refusing it.",
                self.path,
                self.hub.connect_timeout,
            )
            self._refuse(HTTPStatus.FORBIDDEN, "no consumer accepted the connection in time")

    def keepalive(self, now: float) -> None:
        """The hub's sweep: ping, drop a silent client, close one past its lifetime."""
        if self.state != OPEN:
            return
        hub = self.hub
        if hub.timeout and now - self.opened_at >= hub.timeout:
            self.close(NORMAL_CLOSURE)
            return
        if self.alive:
            self.alive = False
            self.idle_since = now
        elif now - self.idle_since >= hub.ping_timeout:
            self._abort(f"answered no ping for {now - self.idle_since:.0f} s")
            return
        self.flow.write(self.codec.ping())

    def going_away(self, code: int = GOING_AWAY) -> None:
        """The server shuts down: close with *code* (1001, or 1012 for a restart), or refuse
        a connection still opening."""
        if self.state == CONNECTING:
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "the server is shutting down")
        elif self.state == OPEN:
            self.close_code = code
            # Work in flight until its websocket.disconnect is handled: the server waits for
            # it before it closes the layer (a consumer that leaves its groups needs one).
            self._stopping = self.hub.server.hold()
            self._stopping.__enter__()
            self.flow.write(self.codec.close(code))
            self.state = CLOSING
            self.transport.loseConnection()

    # Emitting, one event at a time per connection ---------------------------------------

    def _emit(self, channel: str, content: dict) -> None:
        queue = self._queue
        if queue is None:
            self._queue = deque(((channel, content),))
            self.hub.server.spawn(self._run_queue())
        else:
            queue.append((channel, content))

    async def _run_queue(self) -> None:
        queue = self._queue
        emit = self.hub.server.emit
        while queue:
            channel, content = queue[0]
            try:
                # reraise: a consumer's failure closes its connection with 1011.
                routed = await emit(channel, content, reraise=True)
            except EventRefused as error:
                # Worker mode: the layer did not take the event, so no worker will see it.
                logger.warning(
                    "Closing the WebSocket on %s: the layer refused its %s event (%s). Run "
                    "more workers, or raise the layer's capacity.",
                    self.path,
                    channel,
                    error,
                )
                self._layer_refused()
            except Exception:
                logger.exception(
                    "The consumer of %s for %s raised; closing the connection.", channel, self.path
                )
                self._consumer_failed()
            else:
                if not routed and channel == CONNECT and self.state == CONNECTING:
                    self._reply({"accept": True})
            queue.popleft()
            if channel == DISCONNECT:
                self._stopped()
        self._queue = None

    def _layer_refused(self) -> None:
        if self.state == CONNECTING:
            self._refuse(
                HTTPStatus.SERVICE_UNAVAILABLE, "the workers cannot take the connection now"
            )
        else:
            self.close(TRY_AGAIN_LATER)

    def _consumer_failed(self) -> None:
        if self.state == CONNECTING:
            self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR, "the consumer failed")
        else:
            self.close(INTERNAL_ERROR)
