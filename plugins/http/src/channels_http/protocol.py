"""The thin Twisted adapter: a connection's bytes to :class:`HttpConnection`, its requests to
consumers (or Django, or an ASGI app), their replies back to the socket.

Per connection: one ``http.response.XXXX!YYYY`` reply channel, bound for the connection's
life, and one timer (idle keep-alive, request, or response timeout, whichever applies). Per
request: one ``http.request`` message and, in-process, one task that runs the routed consumer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Factory, Protocol

from channels_core.exceptions import EventRefused
from channels_core.headers import InvalidHeader
from channels_core.protocols import UpgradeRequest
from channels_core.transport import write

from .asgi import django_application, run_asgi, static_django_application
from .connection import HttpConnection, ProtocolError, Request, ResponseError
from .upgrade import hand_over, take_over, upgrade_token

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("channels_http.access")

HTTP_REQUEST = "http.request"
HTTP_RESPONSE = "http.response"
# Past this many complete requests waiting their turn, stop reading from the client.
MAX_BACKLOG = 32
# Why a request may have gone unanswered, for the 504's log line.
NO_WORKER_ANSWERED = (
    "No worker answered it: check that a channels worker is running, that its routing has a "
    "consumer for http.request on this path, and that --only-channels/--exclude-channels do "
    "not keep it off http.request."
)
NO_CONSUMER_ANSWERED = "Its consumer (or ASGI application) did not finish the response in time."


def _address(address: Any) -> list | None:
    host = getattr(address, "host", None)
    if host is None:
        return None
    return [host, address.port]


class HttpFactory(Factory):
    """Builds an :class:`HttpProtocol` per connection; holds the options they share."""

    def __init__(self, server: Any) -> None:
        self.server = server
        option = server.option
        self.max_header_size = option("http", "max_header_size")
        self.max_body_size = option("http", "max_body_size")
        self.keepalive_timeout = option("http", "keepalive_timeout")
        self.request_timeout = option("http", "request_timeout")
        self.http_timeout = option("http", "http_timeout")
        self.proxy_headers = option("http", "proxy_headers")
        self.root_path = option("http", "root_path")
        self.access_log = option("http", "access_log")
        # Built on the first unrouted request: a server without Django settings never needs it.
        self.django_application = (
            static_django_application if option("http", "static") else django_application
        )

    def buildProtocol(self, addr: Any) -> HttpProtocol:
        """A protocol for the new connection."""
        protocol = HttpProtocol(self)
        protocol.factory = self
        return protocol


class HttpProtocol(Protocol):
    """One HTTP/1.1 connection."""

    def __init__(self, factory: HttpFactory) -> None:
        self.factory = factory
        self.server = factory.server
        self.connection: HttpConnection | None = None
        self.flow: Any = None
        self.reply_channel = ""
        self.scheme = "http"
        self.client: list | None = None
        self.local: list | None = None
        self.request: Request | None = None
        # The client of the request being served, for the access log: X-Forwarded-For's
        # with proxy_headers, as the message says.
        self.request_client: list | None = None
        self.response_started = False
        self.status = 0
        self.sent = 0
        self._timer: Any = None
        self._deadline: float | None = None
        self._timer_kind = ""
        self._disconnected: asyncio.Future | None = None
        # Done when the request being served is answered, or can no longer be.
        self._answered: asyncio.Future | None = None
        self._paused = False
        # The first bytes, until they show whether another protocol takes the connection
        # (HTTP/2's preface, or an ALPN id the TLS handshake negotiated); None once decided.
        self._opening: bytes | None = b""

    # Connection events -------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Bind a reply channel to the connection and wait for a request."""
        factory = self.factory
        self.connection = HttpConnection(factory.max_header_size, factory.max_body_size)
        self.reply_channel = self.server.open_reply(HTTP_RESPONSE, self.reply)
        # Responses are never dropped (a part missing would corrupt the body): a client that
        # does not read a streaming response loses the connection instead.
        self.flow = self.server.write_flow(
            self.transport, self.reply_channel, self._overflowed, None, "an HTTP connection"
        )
        # An ssl: endpoint wraps the socket in a TLS transport.
        self.scheme = "https" if ISSLTransport.providedBy(self.transport) else "http"
        self.client = _address(self.transport.getPeer())
        self.local = _address(self.transport.getHost())
        self._set_timer("idle", factory.keepalive_timeout)

    def dataReceived(self, data: bytes) -> None:
        """Parse; start the request timer when a request begins; serve what is complete."""
        connection = self.connection
        if connection is None:
            return
        if self._opening is not None:
            data = self._opening + data
            if self._taken_over(data):
                return
        output = connection.receive(data)
        if output:
            write(self.transport, output)
        if self._timer_kind == "idle" and connection.receiving:
            self._set_timer("request", self.factory.request_timeout)
        if connection.backlog > MAX_BACKLOG and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        self._next()

    def _taken_over(self, data: bytes) -> bool:
        """Whether the connection went to another protocol (or waits for more bytes to
        tell); decided on the first bytes, once."""
        server = self.server
        negotiated = getattr(self.transport, "negotiatedProtocol", None)
        handler = server.connection_handler(negotiated, data)
        if handler is None and server.preface_pending(data):
            self._opening = data
            return True
        self._opening = None
        if handler is None:
            return False
        self._detach()
        take_over(server, handler, self.transport, data)
        return True

    def connectionLost(self, reason: Any = None) -> None:
        """The client is gone: replies to this connection are dropped from now on."""
        self._detach()
        if self._disconnected is not None and not self._disconnected.done():
            self._disconnected.set_result(None)

    def _detach(self) -> None:
        if self.connection is None:
            return
        self.connection = None
        self._cancel_timer()
        self.flow.detach()
        self.server.close_reply(self.reply_channel)
        self._answer_settled()

    def _answer_settled(self) -> None:
        """The request being served is answered, or the connection is gone."""
        answered, self._answered = self._answered, None
        if answered is not None and not answered.done():
            answered.set_result(None)

    # Timers ------------------------------------------------------------------------------

    def _set_timer(self, kind: str, seconds: float | None) -> None:
        """Arm the connection's one deadline (none when *seconds* is falsy).

        Requests move the deadline several times each (request, response, keep-alive), so
        the reactor timer is not cancelled and re-created every time: it stays armed and,
        when it fires early, re-arms itself for what is left of the current deadline.
        """
        self._timer_kind = kind
        if not seconds:
            self._deadline = None
            return
        reactor = self.server.reactor
        self._deadline = deadline = reactor.seconds() + seconds
        timer = self._timer
        if timer is None:
            self._timer = reactor.callLater(seconds, self._check_deadline)
        elif timer.getTime() > deadline:
            timer.reset(seconds)

    def _cancel_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check_deadline(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        remaining = self._deadline - self.server.reactor.seconds()
        if remaining > 0:
            self._timer = self.server.reactor.callLater(remaining, self._check_deadline)
            return
        self._timed_out()

    def _timed_out(self) -> None:
        kind, self._deadline, self._timer_kind = self._timer_kind, None, ""
        connection = self.connection
        if connection is None:
            return
        if kind == "idle":
            self.transport.loseConnection()
        elif kind == "request":
            connection.timed_out()
            self._next()
        elif kind == "response":
            logger.warning(
                "No response to %s %s (http.request, reply channel %s) within http_timeout "
                "(%s s); answering 504. %s",
                connection.current.method if connection.current else "?",
                connection.current.target.decode("latin-1") if connection.current else "?",
                self.reply_channel,
                self.factory.http_timeout,
                NO_WORKER_ANSWERED if self.server.mode == "worker" else NO_CONSUMER_ANSWERED,
            )
            self.abort(ProtocolError(504, "the application did not answer in time"))

    # Requests ----------------------------------------------------------------------------

    def _next(self) -> None:
        """Serve the next complete request, if none is being answered."""
        connection = self.connection
        if connection is None:
            return
        event = connection.next_request()
        if event is None:
            return
        if self._paused and connection.backlog <= MAX_BACKLOG // 2:
            self._paused = False
            self.transport.resumeProducing()
        if isinstance(event, ProtocolError):
            self.abort(event)
        else:
            self._serve(event)

    def _serve(self, request: Request) -> None:
        content = self.request_message(request)
        if request.upgrade is not None:
            token = upgrade_token(request.headers)
            handler = self.server.upgrade_handler(token) if token else None
            if handler is not None:
                self._upgrade(handler, request, content)
                return
        self.request = request
        self.request_client = content["client"]
        self.response_started = False
        self.sent = 0
        self._set_timer("response", self.factory.http_timeout)
        self.server.spawn(self._run(content, request))

    async def _run(self, content: dict, request: Request) -> None:
        """Hand the request to the host; unrouted in-process, Django's views serve it.

        The work lasts until the response is complete (or the connection is gone), so that
        draining on SIGTERM waits for the answers still owed, by a consumer or a worker. A
        layer that refuses the request (worker mode: full, or unreachable) gets the client a
        503 at once rather than a 504 after ``http_timeout``.
        """
        with self.server.hold():
            answered = self._answered = self.server.loop.create_future()
            try:
                if not await self.server.emit(HTTP_REQUEST, content, reraise=True):
                    await run_asgi(
                        self.factory.django_application(), content, self.reply, self.disconnected
                    )
            except Exception as error:
                # A refusal by the layer (worker mode: full, or unreachable) is a 503, so the
                # client may retry; anything else the application raised is a 500.
                refused = isinstance(error, EventRefused)
                logger.exception(
                    "Could not put %s %s on the layer for the workers; answering 503."
                    if refused
                    else "Serving %s %s raised; answering 500 and still serving.",
                    content["method"],
                    content["path"],
                )
                if self.connection is not None and self.connection.current is request:
                    self.abort(
                        ProtocolError(503, "the workers cannot take the request now")
                        if refused
                        else ProtocolError(500, "the application raised an error")
                    )
                return
            await answered

    def _upgrade(self, handler: Any, request: Request, content: dict) -> None:
        upgrade = UpgradeRequest(
            method=request.method,
            path=content["path"],
            query_string=content["query_string"],
            headers=request.headers,
            http_version=request.http_version,
            scheme=content["scheme"],
            root_path=content["root_path"],
            client=content["client"],
            server=content["server"],
            leftover=request.upgrade or b"",
        )
        self._detach()
        hand_over(self.server, handler, upgrade, self.transport)

    @property
    def disconnected(self) -> asyncio.Future:
        """A future done when the client goes away (for ASGI ``http.disconnect``)."""
        if self._disconnected is None:
            self._disconnected = self.server.loop.create_future()
            if self.connection is None:
                self._disconnected.set_result(None)
        return self._disconnected

    def request_message(self, request: Request) -> dict:
        """The ``http.request`` message of *request*."""
        raw_path, _, query_string = request.target.partition(b"?")
        factory = self.factory
        client = self.client
        scheme = self.scheme
        if factory.proxy_headers:
            client, scheme = self._forwarded(request, client, scheme)
        return {
            "reply_channel": self.reply_channel,
            "http_version": request.http_version,
            "method": request.method,
            "scheme": scheme,
            "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
            "query_string": query_string,
            "root_path": factory.root_path,
            "headers": request.headers,
            "body": request.body,
            "body_channel": None,
            "client": client,
            "server": self.local,
        }

    @staticmethod
    def _forwarded(request: Request, client: list | None, scheme: str) -> tuple:
        """Client address and scheme from ``X-Forwarded-*`` (only when trusted)."""
        forwarded_for = request.header(b"x-forwarded-for")
        if forwarded_for:
            host = forwarded_for.split(b",")[0].strip().decode("latin-1")
            port = request.header(b"x-forwarded-port")
            client = [host, int(port) if port and port.isdigit() else 0]
        proto = request.header(b"x-forwarded-proto")
        if proto:
            scheme = proto.split(b",")[0].strip().decode("latin-1").lower()
        return client, scheme

    # Responses ---------------------------------------------------------------------------

    def reply(self, content: dict) -> None:
        """An ``http.response`` reply: the first carries status and headers; ``more_content``
        keeps the response open for more parts."""
        connection = self.connection
        request = connection.current if connection is not None else None
        if request is None:
            logger.debug("Dropped a response for %s: no request is waiting.", self.reply_channel)
            return
        body = content.get("content", b"")
        more = content.get("more_content", False)
        try:
            if self.response_started:
                data = connection.send_body(body, more)
            else:
                status = content.get("status")
                if not isinstance(status, int):
                    logger.error(
                        "The first http.response reply has status=%r; it must carry an int "
                        "status such as 200. Answering 500.",
                        status,
                    )
                    self.abort(ProtocolError(500, "the application sent no status"))
                    return
                self.status = status
                self._set_timer("", None)
                data = connection.start_response(status, content.get("headers", ()), body, more)
                self.response_started = True
        except (InvalidHeader, ResponseError) as error:
            # Nothing of it is written: a 500 when the head is not out yet, else the
            # connection is cut, since the client could not tell where the response ends.
            logger.error(
                "The response to %s %s cannot be written: %s. %s.",
                request.method,
                request.target.decode("latin-1"),
                error,
                "Closing the connection" if self.response_started else "Answering 500",
            )
            self.abort(ProtocolError(500, "the application sent an invalid response"))
            return
        self.flow.write(data)
        self.sent += len(body)
        if not more:
            self._answer_settled()
            self._finished(connection)

    def _finished(self, connection: HttpConnection) -> None:
        if self.factory.access_log:
            self._log_access(connection.keep_alive)
        if not connection.keep_alive:
            self.transport.loseConnection()
            self._detach()
            return
        self._set_timer(
            *(
                ("request", self.factory.request_timeout)
                if connection.receiving
                else ("idle", self.factory.keepalive_timeout)
            )
        )
        self._next()

    def _overflowed(self) -> None:
        """The client has not read its response for too long: cut it and hang up."""
        self.transport.abortConnection()
        self._detach()

    def abort(self, error: ProtocolError) -> None:
        """Answer *error* (or cut a response already started) and close the connection."""
        connection = self.connection
        if connection is None:
            return
        if not self.response_started:
            self.status = error.status
            write(self.transport, connection.error_response(error))
        if self.factory.access_log:
            self._log_access(False)
        self.transport.loseConnection()
        self._detach()

    def _log_access(self, keep_alive: bool) -> None:
        client = self.request_client or self.client or ["-", 0]
        current = self.request
        request_line = (
            f"{current.method} {current.target.decode('latin-1')} HTTP/{current.http_version}"
            if current is not None
            else "-"
        )
        access_logger.info(
            '%s:%s "%s" %d %d%s',
            client[0],
            client[1],
            request_line,
            self.status,
            self.sent,
            "" if keep_alive else " close",
        )
