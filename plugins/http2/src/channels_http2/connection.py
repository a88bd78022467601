"""One HTTP/2 connection: the ``h2`` library's state machine between the socket and the host.

Each request stream becomes one ``http.request`` message (``http_version`` ``"2"``, the body
whole, as channels-http sends) with a reply channel of its own, served as HTTP/1.1's are: by
the routed consumer, Django's views or the ASGI application of ``channels serve module:app``.
Its ``http.response`` replies become HEADERS and DATA frames, sent as the stream's and the
connection's flow-control windows allow; the rest waits for WINDOW_UPDATE.

An extended CONNECT with ``:protocol websocket`` (RFC 8441) is handed to the ``websocket``
protocol's upgrade handler, as HTTP/1.1's ``Upgrade: websocket`` is, over a
:class:`~channels_http2.websocket.StreamTransport` that carries its bytes in DATA frames.

Limits: ``max_concurrent_streams`` requests in flight per connection (counting requests the
client reset but whose consumer still runs: further streams are refused), the header list
size (HPACK bombs stop there), 64 CONTINUATION frames per header block (the ``h2``
library's), ``max_body_size`` per request body (413), and ``max_resets`` client resets per
10 s (then GOAWAY ENHANCE_YOUR_CALM). A protocol error is a GOAWAY with its code, or an
RST_STREAM where only a stream is at fault; never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from typing import Any
from urllib.parse import unquote_to_bytes

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import FlowControlError, ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Protocol

from channels_core.exceptions import EventRefused
from channels_core.headers import ResponseError, checked_header, counted_body, declared_length
from channels_http.asgi import django_application, run_asgi, static_django_application
from channels_http.protocol import NO_CONSUMER_ANSWERED, NO_WORKER_ANSWERED

logger = logging.getLogger(__name__)

HTTP_REQUEST = "http.request"
HTTP_RESPONSE = "http.response"
RESET_WINDOW = 10.0
# Response headers HTTP/2 forbids (RFC 9113, section 8.2.2); an application written for
# HTTP/1.1 may still send them, so they are left out rather than breaking the stream.
CONNECTION_HEADERS = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)

# The HTTP/2 connections of each server, for GOAWAY on drain.
_connections: weakref.WeakKeyDictionary[Any, set[H2Protocol]] = weakref.WeakKeyDictionary()


def _address(address: Any) -> list | None:
    host = getattr(address, "host", None)
    if host is None:
        return None
    return [host, address.port]


class Stream:
    """One request stream: its head, its body so far, and its response's progress."""

    __slots__ = (
        "answered",
        "body",
        "discard",
        "disconnected",
        "ended",
        "finish",
        "flow",
        "headers",
        "id",
        "length",
        "length_sent",
        "pending",
        "pseudo",
        "reply_channel",
        "started",
        "status",
        "timer",
        "websocket",
    )

    def __init__(self, stream_id: int, pseudo: dict[bytes, bytes], headers: list) -> None:
        self.id = stream_id
        self.pseudo = pseudo
        self.headers = headers
        self.body: list[bytes] | None = []
        self.reply_channel = ""
        self.started = False  # response HEADERS sent
        self.ended = False  # the response is complete (END_STREAM queued)
        self.pending: deque[bytes] = deque()  # response body waiting for the window
        self.finish = False  # end the stream once pending is sent
        self.answered: asyncio.Future | None = None
        self.disconnected: asyncio.Future | None = None
        self.timer: Any = None
        self.websocket: Any = None  # the StreamTransport of an RFC 8441 WebSocket
        self.status = 0
        self.flow: Any = None  # the WriteFlow told what waits for the window
        # The response carries no body (HEAD, 1xx, 204, 304): what the application sends of
        # one is dropped. Else the Content-Length it set (None: none) and the body so far.
        self.discard = False
        self.length: int | None = None
        self.length_sent = 0


class H2Protocol(Protocol):
    """One HTTP/2 connection (see the module docstring)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        option = server.option
        self.max_streams = option("http2", "max_concurrent_streams")
        self.max_resets = option("http2", "max_resets")
        self.max_body_size = option("http", "max_body_size")
        self.http_timeout = option("http", "http_timeout")
        self.idle_timeout = option("http", "keepalive_timeout")
        self.proxy_headers = option("http", "proxy_headers")
        self.root_path = option("http", "root_path")
        self.django_application = (
            static_django_application if option("http", "static") else django_application
        )
        self.websocket_handler = (
            server.upgrade_handler("websocket") if option("http2", "websocket") else None
        )
        self.h2 = H2Connection(
            # Outbound headers are checked here (reply), once; h2 need not check them again.
            H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_inbound_headers=True,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        settings = {
            SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: option("http2", "max_header_list_size"),
            SettingCodes.MAX_FRAME_SIZE: option("http2", "max_frame_size"),
            SettingCodes.INITIAL_WINDOW_SIZE: option("http2", "initial_window_size"),
            SettingCodes.ENABLE_PUSH: 0,
        }
        if self.websocket_handler is not None:
            settings[SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        # The first SETTINGS frame carries the current values of local_settings; values set
        # with update() would only be queued for an acknowledgement and never be sent.
        self.h2.local_settings = Settings(client=False, initial_values=settings)
        # The header list limit is checked by the HPACK decoder as it decodes.
        self.h2.decoder.max_header_list_size = settings[SettingCodes.MAX_HEADER_LIST_SIZE]
        self.h2.max_inbound_frame_size = settings[SettingCodes.MAX_FRAME_SIZE]
        self.streams: dict[int, Stream] = {}
        # Requests handed to the host and not answered yet, reset ones included.
        self.in_flight = 0
        self.resets: deque[float] = deque()
        self.scheme = "http"
        self.client: list | None = None
        self.local: list | None = None
        self.closed = False
        self.going_away = False
        self._idle: Any = None
        self._flush_handle: Any = None
        self.flow: Any = None

    # Connection events -------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Send the server's SETTINGS; note the addresses and the scheme."""
        transport = self.transport
        self.scheme = "https" if ISSLTransport.providedBy(transport) else "http"
        self.client = _address(transport.getPeer())
        self.local = _address(transport.getHost())
        _connections.setdefault(self.server, set()).add(self)
        # The socket's buffer, which windows a client grants but does not read can fill: its
        # streams' own flows bound what waits for their windows.
        self.flow = self.server.write_flow(
            transport, "", self._overflowed, None, f"an HTTP/2 connection from {self.client}"
        )
        self.h2.initiate_connection()
        self._flush()
        self._watch_idle()
        if self.server.draining:
            self.go_away()

    def dataReceived(self, data: bytes) -> None:
        """Feed the bytes to ``h2``; act on its events; send what it has to say."""
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as error:
            self._connection_error(error)
            return
        for event in events:
            if self.closed:
                return
            kind = type(event)
            if kind is RequestReceived:
                self._request(event)
            elif kind is DataReceived:
                self._data(event)
            elif kind is StreamEnded:
                self._ended(event.stream_id)
            elif kind is WindowUpdated:
                self._window_opened(event.stream_id)
            elif kind is RemoteSettingsChanged:
                self._window_opened(0)
            elif kind is StreamReset:
                self._reset_by_client(event.stream_id)
            elif kind is ConnectionTerminated:
                self._flush()
                self._close()
                return
            # Trailers, priorities, pings (h2 answers them) and the rest need nothing.
        self._flush()
        self._watch_idle()

    def connectionLost(self, reason: Any = None) -> None:
        """The client is gone: every stream with it."""
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        for stream in list(self.streams.values()):
            self._forget(stream, lost=True)
        connections = _connections.get(self.server)
        if connections is not None:
            connections.discard(self)

    def _connection_error(self, error: ProtocolError) -> None:
        code = getattr(error, "error_code", None) or ErrorCodes.PROTOCOL_ERROR
        logger.info("Closing an HTTP/2 connection from %s: %s.", self.client, error)
        with contextlib.suppress(ProtocolError):
            self.h2.close_connection(error_code=code, additional_data=str(error)[:200].encode())
        self._flush()
        self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.loseConnection()

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.flow.write(data)

    def _overflowed(self) -> None:
        """The client has not read for too long: hang up (its streams are lost)."""
        self.closed = True
        self.transport.abortConnection()

    def _flush_soon(self) -> None:
        """Send what h2 has queued at the end of this turn of the loop: the responses of
        several streams answered in one turn leave in one write."""
        if self._flush_handle is None:
            self._flush_handle = self.server.loop.call_soon(self._flush)

    def _watch_idle(self) -> None:
        """Close a connection with no stream open after ``keepalive_timeout``."""
        if self.streams or self.closed:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            return
        if self._idle is None:
            self._idle = self.server.loop.call_later(self.idle_timeout, self._idled)

    def _idled(self) -> None:
        self._idle = None
        if not self.streams and not self.closed:
            self.go_away()

    def go_away(self) -> None:
        """GOAWAY (NO_ERROR): no new streams; the open ones finish, then the connection
        closes."""
        if self.closed or self.going_away:
            return
        self.going_away = True
        # h2's close_connection() would also stop the streams still open from sending, so
        # the frame is written here, after what h2 has queued; new streams are refused.
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.h2.highest_inbound_stream_id
        frame.error_code = ErrorCodes.NO_ERROR
        self._flush()
        self.flow.write(frame.serialize())
        if not self.streams:
            self._close()

    # Requests ----------------------------------------------------------------------------

    def _request(self, event: RequestReceived) -> None:
        stream_id = event.stream_id
        pseudo: dict[bytes, bytes] = {}
        headers: list[list[bytes]] = []
        cookies: list[bytes] = []
        for name, value in event.headers:
            if name[:1] == b":":
                pseudo[name] = value
            elif name == b"cookie":
                cookies.append(value)
            else:
                headers.append([name, value])
        if cookies:  # RFC 9113, 8.2.3: cookie crumbs are joined for HTTP/1.1 applications
            headers.append([b"cookie", b"; ".join(cookies)])
        authority = pseudo.get(b":authority")
        if authority is not None and not any(name == b"host" for name, _ in headers):
            headers.insert(0, [b"host", authority])
        if self.going_away:
            self._refuse(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        if self.in_flight >= self.max_streams:
            # Requests the client reset still count until their consumers finish, so
            # opening and resetting streams (rapid reset) cannot pile up work: it is refused,
            # and counted against the client as a reset is.
            self._refuse(stream_id, ErrorCodes.REFUSED_STREAM)
            self._reset_by_client(stream_id)
            return
        stream = Stream(stream_id, pseudo, headers)
        self.streams[stream_id] = stream
        if pseudo.get(b":method") == b"CONNECT":
            self._connect(stream)
            return
        if event.stream_ended is not None:
            self._serve(stream)

    def _refuse(self, stream_id: int, code: ErrorCodes) -> None:
        with contextlib.suppress(ProtocolError, StreamClosedError):
            self.h2.reset_stream(stream_id, error_code=code)

    def _data(self, event: DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        # Every byte counts against the connection's window, whatever becomes of it.
        if event.flow_controlled_length:
            with contextlib.suppress(ProtocolError, StreamClosedError):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        if stream is None:
            return
        if stream.websocket is not None:
            stream.websocket.received(event.data)
            return
        if stream.body is None:  # already answered (413) or being served
            return
        stream.body.append(event.data)
        if sum(map(len, stream.body)) > self.max_body_size:
            stream.body = None
            self._error(stream, 413, "the request body is larger than max_body_size")

    def _ended(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if stream.websocket is not None:
            stream.websocket.client_ended()
            return
        if stream.body is not None and stream.answered is None:
            self._serve(stream)

    def _reset_by_client(self, stream_id: int) -> None:
        now = self.server.loop.time()
        resets = self.resets
        resets.append(now)
        while resets and resets[0] < now - RESET_WINDOW:
            resets.popleft()
        stream = self.streams.get(stream_id)
        if stream is not None:
            self._forget(stream, lost=True)
        if len(resets) > self.max_resets:
            logger.warning(
                "Closing an HTTP/2 connection from %s: %d streams reset or refused within "
                "%.0f s (max_resets %d).",
                self.client,
                len(resets),
                RESET_WINDOW,
                self.max_resets,
            )
            self.h2.close_connection(error_code=ErrorCodes.ENHANCE_YOUR_CALM)
            self._flush()
            self._close()

    def request_message(self, stream: Stream) -> dict:
        """The ``http.request`` message of *stream*."""
        pseudo = stream.pseudo
        raw_path, _, query_string = pseudo.get(b":path", b"/").partition(b"?")
        client, scheme = self.client, self.scheme
        if self.proxy_headers:
            client, scheme = self._forwarded(stream.headers, client, scheme)
        body = stream.body or []
        return {
            "reply_channel": stream.reply_channel,
            "http_version": "2",
            "method": pseudo.get(b":method", b"GET").decode("latin-1"),
            "scheme": scheme,
            "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
            "query_string": query_string,
            "root_path": self.root_path,
            "headers": stream.headers,
            "body": body[0] if len(body) == 1 else b"".join(body),
            "body_channel": None,
            "client": client,
            "server": self.local,
        }

    @staticmethod
    def _forwarded(headers: list, client: list | None, scheme: str) -> tuple:
        values = {name: value for name, value in headers}
        forwarded_for = values.get(b"x-forwarded-for")
        if forwarded_for:
            host = forwarded_for.split(b",")[0].strip().decode("latin-1")
            port = values.get(b"x-forwarded-port")
            client = [host, int(port) if port and port.isdigit() else 0]
        proto = values.get(b"x-forwarded-proto")
        if proto:
            scheme = proto.split(b",")[0].strip().decode("latin-1").lower()
        return client, scheme

    def _serve(self, stream: Stream) -> None:
        server = self.server
        method = stream.pseudo.get(b":method")
        if method is None or b":path" not in stream.pseudo:
            self._refuse(stream.id, ErrorCodes.PROTOCOL_ERROR)
            self._forget(stream)
            return
        stream.reply_channel = server.open_reply(
            HTTP_RESPONSE, lambda content, stream=stream: self.reply(stream, content)
        )
        # What waits for the stream's window is held here, not in the transport: the flow is
        # told its size (responses are never dropped; one the client does not read is reset).
        stream.flow = server.write_flow(
            None,
            stream.reply_channel,
            lambda stream=stream: self._stream_overflowed(stream),
            None,
            f"an HTTP/2 stream for {stream.pseudo[b':path'].decode('latin-1')}",
        )
        content = self.request_message(stream)
        stream.body = None
        stream.answered = server.loop.create_future()
        stream.timer = server.loop.call_later(self.http_timeout, self._timed_out, stream)
        self.in_flight += 1
        server.spawn(self._run(stream, content))

    async def _run(self, stream: Stream, content: dict) -> None:
        """Hand the request to the host (Django's views when nothing is routed) and hold the
        work until the response is complete or the stream is gone."""
        server = self.server
        try:
            with server.hold():
                try:
                    if not await server.emit(HTTP_REQUEST, content, reraise=True):
                        await run_asgi(
                            self.django_application(),
                            content,
                            lambda reply: self.reply(stream, reply),
                            self._disconnected(stream),
                        )
                except Exception as error:
                    refused = isinstance(error, EventRefused)
                    logger.exception(
                        "Could not put %s %s on the layer for the workers; answering 503."
                        if refused
                        else "Serving %s %s over HTTP/2 raised; answering 500.",
                        content["method"],
                        content["path"],
                    )
                    self._error(stream, 503 if refused else 500, "")
                    return
                await stream.answered
        finally:
            self.in_flight -= 1

    def _disconnected(self, stream: Stream) -> asyncio.Future:
        if stream.disconnected is None:
            stream.disconnected = self.server.loop.create_future()
            if stream.id not in self.streams:
                stream.disconnected.set_result(None)
        return stream.disconnected

    def _timed_out(self, stream: Stream) -> None:
        stream.timer = None
        if stream.id in self.streams and not stream.started:
            logger.warning(
                "No response to %s %s (http.request, reply channel %s, HTTP/2 stream %d) "
                "within http_timeout (%s s); answering 504. %s",
                stream.pseudo.get(b":method", b"").decode("latin-1"),
                stream.pseudo.get(b":path", b"").decode("latin-1"),
                stream.reply_channel,
                stream.id,
                self.http_timeout,
                NO_WORKER_ANSWERED if self.server.mode == "worker" else NO_CONSUMER_ANSWERED,
            )
            self._error(stream, 504, "the application did not answer in time")

    # Responses ---------------------------------------------------------------------------

    def reply(self, stream: Stream, content: dict) -> None:
        """An ``http.response`` reply for *stream*: the first carries status and headers;
        ``more_content`` keeps it open for more parts."""
        if stream.id not in self.streams or stream.ended or self.closed:
            logger.debug("Dropped a response for stream %d: it is gone.", stream.id)
            return
        body = content.get("content", b"")
        more = content.get("more_content", False)
        if not stream.started:
            status = content.get("status")
            if not isinstance(status, int) or not 100 <= status <= 999:
                logger.error(
                    "The first http.response reply has status=%r; it must carry an int status "
                    "such as 200. Answering 500.",
                    status,
                )
                self._error(stream, 500, "the application sent no status")
                return
            headers = [(b":status", str(status).encode())]
            length = None
            stream.discard = (
                status < 200 or status in (204, 304) or stream.pseudo.get(b":method") == b"HEAD"
            )
            if stream.discard:
                body = b""
            try:
                for name, value in content.get("headers", ()):
                    # Checked before HPACK, which would carry anything (RFC 9113, 8.2.1);
                    # names go lower case, as HTTP/2 requires.
                    name, value = checked_header(name, value)
                    name = name.lower()
                    if name in CONNECTION_HEADERS:
                        continue
                    if name == b"content-length":
                        length = declared_length(value, length)
                    headers.append((name, value))
                if length is not None and not stream.discard:
                    # A HEAD or bodyless response's Content-Length describes a body it does
                    # not carry.
                    stream.length_sent = counted_body(length, 0, len(body), more)
                    stream.length = length
                self.h2.send_headers(stream.id, headers, end_stream=not more and not body)
            except ResponseError as error:
                self._invalid_response(stream, error)
                return
            except (ProtocolError, ValueError, TypeError, AttributeError) as error:
                logger.error(
                    "A response header for %s is invalid (%s); answering 500.",
                    stream.pseudo.get(b":path", b"").decode("latin-1"),
                    error,
                )
                self._error(stream, 500, "the application sent an invalid header")
                return
            stream.started = True
            stream.status = status
            if stream.timer is not None:
                stream.timer.cancel()
                stream.timer = None
            if not more and not body:
                stream.ended = True
                self._flush_soon()
                self._done(stream)
                return
        elif stream.discard:
            body = b""
        elif stream.length is not None:
            try:
                stream.length_sent = counted_body(
                    stream.length, stream.length_sent, len(body), more
                )
            except ResponseError as error:
                self._invalid_response(stream, error)
                return
        if body:
            stream.pending.append(body)
        if not more:
            stream.finish = True
            stream.ended = True
        self._send_pending(stream)
        self._flush_soon()

    def _invalid_response(self, stream: Stream, error: ResponseError) -> None:
        """*stream*'s response cannot be written as given: 500 if its head is not out yet,
        else the stream is reset (INTERNAL_ERROR), since its body would be malformed."""
        logger.error(
            "The response to %s %s cannot be written: %s. %s.",
            stream.pseudo.get(b":method", b"").decode("latin-1"),
            stream.pseudo.get(b":path", b"").decode("latin-1"),
            error,
            "Resetting the stream" if stream.started else "Answering 500",
        )
        self._error(stream, 500, "the application sent an invalid response")

    def _send_pending(self, stream: Stream) -> None:
        """Send what the windows allow of *stream*'s queued body; end it when all is sent."""
        try:
            ended = send_within_window(self.h2, stream.id, stream.pending, stream.finish)
        except (StreamClosedError, FlowControlError, ProtocolError):
            self._forget(stream, lost=True)
            return
        if ended:
            stream.finish = False
            self._done(stream)
        elif stream.flow is not None:
            stream.flow.held(sum(map(len, stream.pending)))

    def _stream_overflowed(self, stream: Stream) -> None:
        """The client has not opened *stream*'s window for too long: reset the stream."""
        if stream.id in self.streams:
            self._refuse(stream.id, ErrorCodes.CANCEL)
            self._forget(stream, lost=True)
            self._flush()

    def _window_opened(self, stream_id: int) -> None:
        if stream_id:
            stream = self.streams.get(stream_id)
            targets = [stream] if stream is not None else []
        else:
            targets = list(self.streams.values())
        for stream in targets:
            if stream.websocket is not None:
                stream.websocket.window_opened()
            elif stream.pending or stream.finish:
                self._send_pending(stream)

    def _error(self, stream: Stream, status: int, reason: str) -> None:
        """Answer *status* on *stream*, or reset it when its response already began."""
        if stream.id not in self.streams:
            return
        if stream.started:
            self._refuse(stream.id, ErrorCodes.INTERNAL_ERROR)
            self._forget(stream, lost=True)
            self._flush()
            return
        text = f"{status} {reason}\n".encode() if reason else f"{status}\n".encode()
        stream.pending.clear()
        stream.ended = False
        self.reply(
            stream,
            {
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                "content": text,
            },
        )

    def _done(self, stream: Stream) -> None:
        """*stream*'s response is complete."""
        self._forget(stream)

    def _forget(self, stream: Stream, lost: bool = False) -> None:
        if self.streams.pop(stream.id, None) is None:
            return
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        if stream.flow is not None:
            stream.flow.detach()
        if stream.reply_channel:
            self.server.close_reply(stream.reply_channel)
        if stream.answered is not None and not stream.answered.done():
            stream.answered.set_result(None)
        if stream.disconnected is not None and not stream.disconnected.done():
            stream.disconnected.set_result(None)
        if stream.websocket is not None:
            stream.websocket.lost(clean=not lost)
        if self.going_away and not self.streams:
            self._flush()
            self._close()
        else:
            self._watch_idle()

    # WebSocket over HTTP/2 ---------------------------------------------------------------

    def _connect(self, stream: Stream) -> None:
        """An extended CONNECT (RFC 8441): ``:protocol websocket`` goes to the websocket
        protocol; any other CONNECT is refused."""
        from .websocket import open_websocket

        protocol = stream.pseudo.get(b":protocol")
        if protocol != b"websocket" or self.websocket_handler is None:
            status = 501 if protocol is None else 400
            self.h2.send_headers(stream.id, [(b":status", str(status).encode())], end_stream=True)
            self._forget(stream)
            return
        open_websocket(self, stream)


def send_within_window(h2: H2Connection, stream_id: int, pending: deque, end: bool) -> bool:
    """Send what the stream's and the connection's flow-control windows allow of the byte
    strings *pending* (taken off as they go); with *end*, end the stream once all is sent, in
    the last DATA frame. True when the stream was ended. h2's errors propagate."""
    while pending:
        window = h2.local_flow_control_window(stream_id)
        if window <= 0:
            return False
        chunk = pending[0]
        size = min(window, h2.max_outbound_frame_size, len(chunk))
        if size < len(chunk):
            pending[0] = chunk[size:]
            chunk = chunk[:size]
        else:
            pending.popleft()
        if end and not pending:
            h2.send_data(stream_id, chunk, end_stream=True)
            return True
        h2.send_data(stream_id, chunk)
    if end:
        h2.end_stream(stream_id)
        return True
    return False


async def go_away_on_drain(server: Any) -> None:
    """The ``http2`` task listener: wait until the server drains, then GOAWAY everywhere."""
    try:
        await asyncio.Event().wait()
    finally:
        for connection in list(_connections.get(server, ())):
            connection.go_away()


def close_all(server: Any) -> None:
    """Close every HTTP/2 connection of *server* still open (after the drain)."""
    for connection in list(_connections.pop(server, ())):
        connection.go_away()
        connection._close()
