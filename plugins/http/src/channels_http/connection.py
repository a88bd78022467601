"""HTTP/1.1 without I/O: bytes in, requests out; responses in, bytes out.

:class:`HttpConnection` wraps one ``httptools.HttpRequestParser`` per connection.
``receive(data)`` parses what arrived and returns the bytes to write at once (a
``100 Continue``); complete requests queue up and :meth:`~HttpConnection.next_request` hands
them out one at a time, so pipelined requests are answered strictly in order. A request's body
is collected whole (chunked or not) up to ``max_body_size``. Bad input never raises: it
becomes a :class:`ProtocolError` event (400, 408, 413, 417 or 431), after which the connection
must be closed.

Responses: :meth:`~HttpConnection.start_response` and :meth:`~HttpConnection.send_body` return
the bytes to write, framed with ``Content-Length`` when the whole body is known and with
chunked transfer encoding (close-delimited for HTTP/1.0) when more parts will follow. What the
application gives is checked before any of it is written: headers by
:func:`channels_core.headers.checked_header`, and a body against the ``Content-Length`` the
application set. A bad response raises :class:`~channels_core.headers.InvalidHeader` or
:class:`ResponseError`; the connection must then answer 500 (nothing was written yet) or be
closed (the head was written), since the client could no longer tell where the response ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from http import HTTPStatus

import httptools

from channels_core.headers import ResponseError as ResponseError  # raised here; named here too
from channels_core.headers import checked_header, counted_body, declared_length

DEFAULT_MAX_HEADER_SIZE = 64 * 1024
DEFAULT_MAX_BODY_SIZE = 10 * 1024 * 1024

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(slots=True)
class Request:
    """A complete request.

    ``target`` is the raw request target (``/a%20b?x=1``); ``headers`` are ``[name, value]``
    byte pairs with lower-cased names, in arrival order. ``upgrade`` is None for a plain
    request; for one that asked to switch protocols (``Connection: upgrade``) it holds the
    bytes that followed its head, and the parser stops there.
    """

    method: str
    target: bytes
    http_version: str
    headers: list[list[bytes]]
    keep_alive: bool
    body: bytes = b""
    upgrade: bytes | None = None

    def header(self, name: bytes) -> bytes | None:
        """The value of the first header called *name* (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(slots=True)
class ProtocolError:
    """The client broke the protocol: answer ``status`` with ``reason`` and close."""

    status: int
    reason: str


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the error is in ``_error``."""


class HttpConnection:
    """The HTTP/1.1 state of one connection; see the module docstring.

    :param max_header_size: the longest request head (request line and headers) in bytes;
        longer ones get 431.
    :param max_body_size: the largest request body in bytes; larger ones get 413.
    """

    def __init__(
        self,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self._parser = httptools.HttpRequestParser(self)
        self._events: deque[Request | ProtocolError] = deque()
        self._error: ProtocolError | None = None
        self._closed = False
        # The request being parsed.
        self._in_head = False
        self._head_size = 0
        self._head_fed = 0
        self._target = b""
        self._headers: list[list[bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._request: Request | None = None
        # The request being answered.
        self.current: Request | None = None
        self._chunked = False
        self._discard_body = False
        # The Content-Length the application set (None: not set), and how much is sent.
        self._length: int | None = None
        self._length_sent = 0
        self._response_keep_alive = True
        self._continue_waiting = False

    # Parsing -----------------------------------------------------------------------------

    @property
    def receiving_head(self) -> bool:
        """True while a request head has begun to arrive but is not complete."""
        return self._in_head

    @property
    def receiving(self) -> bool:
        """True while a request has begun to arrive but is not complete."""
        return self._in_head or self._request is not None

    @property
    def backlog(self) -> int:
        """How many complete requests wait for their turn (pipelining)."""
        return len(self._events)

    @property
    def closed(self) -> bool:
        """True once the connection cannot carry another request (error, upgrade, close)."""
        return self._closed

    def receive(self, data: bytes) -> bytes:
        """Parse *data*; return the bytes to write now (``100 Continue``), usually ``b""``."""
        if self._closed or not data:
            return b""
        # httptools buffers a header line until it ends, unseen by the callbacks, so a head
        # still incomplete after this feed is charged the whole feed: an over-estimate by at
        # most one read, which is what stops a client from growing that buffer without end.
        output = b""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data[upgrade.args[0] :])
        except httptools.HttpParserError as error:
            self._fail(self._error or ProtocolError(400, f"malformed request: {error}"))
        else:
            if self._in_head:
                self._head_fed += len(data)
            if self._in_head and self._head_fed > self.max_header_size:
                self._fail(ProtocolError(431, "request header fields too large"))
        if self._continue_waiting and self.current is None and not self._events:
            self._continue_waiting = False
            output = CONTINUE
        return output

    def timed_out(self) -> None:
        """The client took too long to send its request: queue a 408."""
        self._fail(ProtocolError(408, "request timeout"))

    def _fail(self, error: ProtocolError) -> None:
        self._closed = True
        self._in_head = False
        self._request = None
        self._continue_waiting = False
        self._events.append(error)

    def _refuse(self, status: int, reason: str) -> None:
        self._error = ProtocolError(status, reason)
        raise _Refused

    def _upgrade(self, leftover: bytes) -> None:
        """The parser stopped after a request asking to switch protocols; keep what followed."""
        self._closed = True
        last = self._events[-1] if self._events else None
        if not isinstance(last, Request) or last.upgrade is None:
            self._fail(ProtocolError(400, "malformed upgrade request"))
            return
        last.upgrade = leftover

    # httptools callbacks (public because the parser calls them by name).

    def on_message_begin(self) -> None:
        """A request starts."""
        self._in_head = True
        self._head_size = 0
        self._head_fed = 0
        self._target = b""
        self._headers = []
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        """A piece of the request target."""
        self._target += url
        self._head_size += len(url)
        if self._head_size > self.max_header_size:
            self._refuse(431, "request header fields too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header line."""
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self.max_header_size:
            self._refuse(431, "request header fields too large")
        self._headers.append([name.lower(), value])

    def on_headers_complete(self) -> None:
        """The head is complete: check the announced body and ``Expect``."""
        self._in_head = False
        parser = self._parser
        request = Request(
            method=parser.get_method().decode("ascii"),
            target=self._target,
            http_version=parser.get_http_version(),
            headers=self._headers,
            keep_alive=parser.should_keep_alive(),
        )
        self._request = request
        length = request.header(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_size:
            self._refuse(413, f"request body larger than {self.max_body_size} bytes")
        expect = request.header(b"expect")
        if expect is not None:
            if expect.lower() != b"100-continue":
                self._refuse(417, f"unsupported expectation {expect!r}")
            self._continue_waiting = True

    def on_body(self, body: bytes) -> None:
        """A piece of the body (de-chunked by the parser)."""
        self._continue_waiting = False
        self._body_size += len(body)
        if self._body_size > self.max_body_size:
            self._refuse(413, f"request body larger than {self.max_body_size} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        """The request is complete: queue it."""
        request = self._request
        if request is None:
            return
        self._continue_waiting = False
        if self._parser.should_upgrade():
            # The parser stops here; receive() fills in the bytes that followed.
            request.keep_alive = False
            request.upgrade = b""
        request.body = b"".join(self._body)
        self._body = []
        self._request = None
        self._events.append(request)

    # Answering ---------------------------------------------------------------------------

    def next_request(self) -> Request | ProtocolError | None:
        """The next request to answer, or None while one is being answered or none waits.

        A :class:`ProtocolError` means: write :meth:`error_response` and close.
        """
        if self.current is not None or not self._events:
            return None
        event = self._events.popleft()
        if isinstance(event, Request):
            self.current = event
            self._response_keep_alive = event.keep_alive
        return event

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after the current (or last) response."""
        return self._response_keep_alive and not (self._closed and not self._events)

    def start_response(
        self, status: int, headers: list, body: bytes = b"", more: bool = False
    ) -> bytes:
        """The status line, headers and first part of the body of the current request.

        *headers* are ``[name, value]`` pairs of bytes or str. With ``more=False`` the
        response is complete (and ``Content-Length`` is added when missing); with
        ``more=True`` it is chunked (HTTP/1.1) or close-delimited (HTTP/1.0) unless the
        headers set ``Content-Length``, which the body must then match.

        Raises :class:`~channels_core.headers.InvalidHeader` or :class:`ResponseError` (then
        nothing is to be written: answer 500) for a header that must not be written, or a
        ``Content-Length`` that is not one number or that *body* already disagrees with.
        """
        request = self.current
        if request is None:
            raise RuntimeError("start_response() called with no request being answered.")
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))]
        length = None
        self._chunked = False
        for name, value in headers:
            name, value = checked_header(name, value)
            lowered = name.lower()
            if lowered == b"content-length":
                length = declared_length(value, length)
            elif lowered == b"transfer-encoding":
                # The framing is ours to choose; a consumer's value would contradict it.
                continue
            elif lowered == b"connection" and value.lower() == b"close":
                self._response_keep_alive = False
                continue
            lines.append(b"%s: %s\r\n" % (name, value))
        bodyless = status in _NO_BODY_STATUSES or status < 200
        self._discard_body = request.method == "HEAD" or bodyless
        # A HEAD or bodyless response's Content-Length describes a body it does not carry.
        self._length = None if self._discard_body else length
        self._length_sent = 0
        if length is None and not bodyless:
            if not more:
                lines.append(b"content-length: %d\r\n" % len(body))
            elif request.http_version == "1.1":
                self._chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:
                self._response_keep_alive = False
        if not self.keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        head = b"".join(lines)
        if self._discard_body:
            self._chunked = False
        return head + self.send_body(body, more)

    def send_body(self, body: bytes, more: bool = False) -> bytes:
        """The next part of the current response's body; ``more=False`` ends the response.

        Raises :class:`ResponseError` (then nothing more is to be written: close the
        connection) when the body goes past the ``Content-Length`` the application set, or
        ends short of it.
        """
        if self.current is None:
            raise RuntimeError("send_body() called with no request being answered.")
        if self._discard_body:
            body = b""
        elif self._length is not None:
            self._length_sent = counted_body(self._length, self._length_sent, len(body), more)
        if self._chunked:
            framed = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            if not more:
                framed += b"0\r\n\r\n"
            body = framed
        if more:
            return body
        self.current = None
        if self._continue_waiting and not self._events and self.keep_alive:
            self._continue_waiting = False
            body += CONTINUE
        return body

    def error_response(self, error: ProtocolError) -> bytes:
        """A complete plain-text response for *error*, closing the connection."""
        text = f"{error.status} {_REASONS.get(error.status, b'').decode()}: {error.reason}\n"
        content = text.encode("utf-8", "replace")
        self._closed = True
        self._response_keep_alive = False
        self.current = None
        return (
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (error.status, _REASONS.get(error.status, b""), len(content), content)
        )
