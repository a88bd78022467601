"""WebSocket over HTTP/2 (RFC 8441): an extended CONNECT stream carried to the ``websocket``
protocol as if it were an HTTP/1.1 connection that asked to upgrade.

The websocket protocol's upgrade handler (``server.upgrade_handler("websocket")``, the same
one HTTP/1.1's ``Upgrade: websocket`` reaches) gets an
:class:`~channels_core.protocols.UpgradeRequest` made from the CONNECT request and a
:class:`StreamTransport` for the stream. What it writes is an HTTP/1.1 response head
(``101 Switching Protocols``, or a refusal) and then WebSocket frames; the transport turns
the head into the stream's HEADERS (101 becomes ``:status 200``, RFC 8441 section 5; the
HTTP/1.1-only ``Upgrade``, ``Connection`` and ``Sec-WebSocket-Accept`` are left out) and the
frames into DATA, within the stream's flow-control window. So the consumers, the
permessage-deflate negotiation, the frame limits, pings and close codes are the ones
WebSocket has over HTTP/1.1, unchanged.
"""

from __future__ import annotations

import base64
import logging
import os
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from h2.errors import ErrorCodes
from h2.exceptions import FlowControlError, ProtocolError, StreamClosedError
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure

from channels_core.protocols import UpgradeRequest

from .connection import send_within_window

if TYPE_CHECKING:
    from .connection import H2Protocol, Stream

logger = logging.getLogger(__name__)

# HTTP/1.1 response headers with no meaning on an HTTP/2 stream.
DROPPED = frozenset(
    (b"upgrade", b"connection", b"sec-websocket-accept", b"content-length", b"keep-alive")
)


def open_websocket(connection: H2Protocol, stream: Stream) -> None:
    """Hand the extended CONNECT *stream* to the websocket protocol."""
    pseudo = stream.pseudo
    raw_path, _, query_string = pseudo.get(b":path", b"/").partition(b"?")
    # The websocket protocol checks an HTTP/1.1 handshake: the headers RFC 8441 replaced by
    # the CONNECT itself are added (a fresh key; its answer is dropped again on the way out).
    headers = [
        [name, value]
        for name, value in stream.headers
        if name not in (b"upgrade", b"connection", b"sec-websocket-key")
    ]
    headers += [
        [b"upgrade", b"websocket"],
        [b"connection", b"upgrade"],
        [b"sec-websocket-key", base64.b64encode(os.urandom(16))],
    ]
    if not any(name == b"sec-websocket-version" for name, _ in headers):
        headers.append([b"sec-websocket-version", b"13"])
    scheme = b"wss" if connection.scheme == "https" else b"ws"
    request = UpgradeRequest(
        method="GET",
        path=unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        query_string=query_string,
        headers=headers,
        http_version="2",
        scheme=scheme.decode(),
        root_path=connection.root_path,
        client=connection.client,
        server=connection.local,
    )
    logger.info("WebSocket over HTTP/2 (RFC 8441) for %s on stream %d.", request.path, stream.id)
    transport = StreamTransport(connection, stream)
    stream.websocket = transport
    protocol = connection.websocket_handler(connection.server, request, transport)
    transport.protocol = protocol
    protocol.makeConnection(transport)


class StreamTransport:
    """A Twisted transport over one HTTP/2 stream, for the websocket protocol."""

    disconnecting = False
    connected = True

    def __init__(self, connection: H2Protocol, stream: Stream) -> None:
        self.connection = connection
        self.stream = stream
        self.protocol: Any = None
        self._head = b""  # the HTTP/1.1 response head, until complete
        self._head_sent = False
        self._pending: deque[bytes] = deque()
        self._ending = False
        self._gone = False
        # The websocket protocol's WriteFlow, told what waits for the stream's window.
        self._producer: Any = None

    # What the websocket protocol calls --------------------------------------------------

    def write(self, data: bytes) -> None:
        """The response head, then WebSocket frames."""
        if self._gone or self.disconnecting or not data:
            return
        if not self._head_sent:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, rest = self._head[:end], self._head[end + 4 :]
            self._head = b""
            self._send_head(head, rest)
            return
        self._pending.append(data)
        self._send()

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """The protocol's write flow control (channels_core.flow.WriteFlow): what waits for
        the stream's window is reported to it with ``held()``."""
        self._producer = producer

    def unregisterProducer(self) -> None:
        """See :meth:`registerProducer`."""
        self._producer = None

    def loseConnection(self) -> None:
        """End the stream once what was written is sent."""
        if self._gone or self.disconnecting:
            return
        self.disconnecting = True
        self._ending = True
        self._send()

    def abortConnection(self) -> None:
        """Reset the stream (CANCEL) at once."""
        if self._gone:
            return
        self.disconnecting = True
        connection = self.connection
        connection._refuse(self.stream.id, ErrorCodes.CANCEL)
        connection._flush()
        connection._forget(self.stream, lost=True)

    def getPeer(self) -> Any:
        return self.connection.transport.getPeer()

    def getHost(self) -> Any:
        return self.connection.transport.getHost()

    def pauseProducing(self) -> None:
        """Flow control is the stream's window; nothing to pause."""

    def resumeProducing(self) -> None:
        """See :meth:`pauseProducing`."""

    def stopProducing(self) -> None:
        self.abortConnection()

    def setTcpNoDelay(self, enabled: bool) -> None:
        """The connection's socket is shared by every stream; left as it is."""

    # What the HTTP/2 connection calls ---------------------------------------------------

    def received(self, data: bytes) -> None:
        """DATA from the client: WebSocket frames for the protocol."""
        if not self._gone and self.protocol is not None:
            self.protocol.dataReceived(data)

    def client_ended(self) -> None:
        """The client ended its side of the stream: the connection is closed for reading."""
        if not self._ending:
            self.loseConnection()

    def window_opened(self) -> None:
        self._send()

    def lost(self, clean: bool) -> None:
        """The stream is gone (ended both ways, reset, or the connection closed)."""
        if self._gone:
            return
        self._gone = True
        self.connected = False
        if self.protocol is not None:
            error = ConnectionDone() if clean else ConnectionLost()
            self.protocol.connectionLost(Failure(error))

    # Sending -------------------------------------------------------------------------------

    def _send_head(self, head: bytes, rest: bytes) -> None:
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            status = 500
        headers = [(b":status", b"200" if status == 101 else str(status).encode())]
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name and name not in DROPPED:
                headers.append((name, value.strip()))
        connection = self.connection
        refused = status != 101
        try:
            connection.h2.send_headers(self.stream.id, headers)
        except (ProtocolError, StreamClosedError) as error:
            logger.info("Could not answer a WebSocket CONNECT on stream %d: %s.",
                        self.stream.id, error)  # fmt: skip
            self.abortConnection()
            return
        self._head_sent = True
        self.stream.started = True
        if rest:
            self._pending.append(rest)
        if refused:
            self._ending = True
            self.disconnecting = True
        self._send()

    def _send(self) -> None:
        """Send what the stream's window allows; end the stream once asked and all is sent."""
        if self._gone or not self._head_sent:
            return
        connection = self.connection
        try:
            ended = send_within_window(connection.h2, self.stream.id, self._pending, self._ending)
        except (StreamClosedError, FlowControlError, ProtocolError):
            connection._forget(self.stream, lost=True)
            return
        connection._flush()
        if ended:
            self._ending = False
            connection._forget(self.stream)
        elif self._producer is not None:
            self._producer.held(sum(map(len, self._pending)))
