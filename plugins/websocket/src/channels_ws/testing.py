"""A small blocking WebSocket client for tests: real sockets, the plugin's own codec.

::

    with WebSocketClient.connect(port, "/echo/") as client:
        client.send_text("hello")
        assert client.receive() == "hello"
        client.close()
        assert client.close_code == 1000

It speaks RFC 6455 as a client (masked frames), optionally offers permessage-deflate, and
can send raw bytes to test how a server treats broken frames. Every read has a timeout.

:class:`~channels_ws.testclient.WebsocketTestClient`, importable from here, drives the
consumers in-process instead, without sockets; :class:`~channels_ws.wsclient.WSClient`, also
importable from here, is Channels 1's test client: messages put on the test layer of a
``ChannelTestCase`` and their consumers run one by one, with login and cookies.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import ssl
from typing import Any

from .frames import (
    BinaryMessage,
    Close,
    Deflate,
    Event,
    FrameCodec,
    Ping,
    ProtocolError,
    TextMessage,
)
from .handshake import accept_key

DEFAULT_TIMEOUT = 10.0


class HandshakeRefused(Exception):
    """The server answered the upgrade with something other than 101; ``status`` says what."""

    def __init__(self, status: int, response: bytes) -> None:
        super().__init__(f"the server answered {status}: {response[:200]!r}")
        self.status = status
        self.response = response


class ConnectionClosed(Exception):
    """The server closed the connection; ``code`` is its close code (1006: no close frame)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the connection closed with code {code}")
        self.code = code


class WebSocketClient:
    """One client connection; build it with :meth:`connect`."""

    def __init__(self, sock: socket.socket, codec: FrameCodec, response: bytes, rest: bytes):
        self.sock = sock
        self.codec = codec
        self.response = response
        self.close_code: int | None = None
        self._events: list[Event] = codec.receive(rest) if rest else []

    @classmethod
    def connect(
        cls,
        port: int,
        path: str = "/",
        host: str = "127.0.0.1",
        headers: list[tuple[str, str]] = (),
        subprotocols: list[str] = (),
        deflate: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> WebSocketClient:
        """Open a connection to ``ws://host:port/path``; :class:`HandshakeRefused` if refused.

        *deflate* is the ``Sec-WebSocket-Extensions`` offer to send, such as
        ``"permessage-deflate"``; with *ssl_context* the connection is ``wss://`` (TLS, the
        server's certificate checked by the context against *host*).
        """
        key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
        if deflate:
            lines.append(f"Sec-WebSocket-Extensions: {deflate}")
        lines.extend(f"{name}: {value}" for name, value in headers)
        sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=host)
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            response, _, rest = data.partition(b"\r\n\r\n")
            status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
            if status != 101:
                raise HandshakeRefused(status, data + _read_all(sock))
            if _headers(response).get("sec-websocket-accept") != accept_key(key).decode():
                raise HandshakeRefused(status, response)
            codec = FrameCodec(1 << 26, 1 << 26, _client_deflate(response), client=True)
        except BaseException:
            sock.close()
            raise
        return cls(sock, codec, response, rest)

    @property
    def headers(self) -> dict[str, str]:
        """The 101 response's headers, names lower-cased."""
        return _headers(self.response)

    def send_text(self, text: str) -> None:
        """Send a text message."""
        self.sock.sendall(self.codec.text(text))

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        self.sock.sendall(self.codec.binary(data))

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (hand-made frames, broken ones included)."""
        self.sock.sendall(data)

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping; the pong is returned by :meth:`receive_event`."""
        self.sock.sendall(self.codec.ping(payload))

    def receive_event(self) -> Event:
        """The next event from the server: a :class:`~channels_ws.frames.TextMessage`,
        ``BinaryMessage``, ``Ping``, ``Pong`` or ``Close`` (``Close(1006)``: no close frame)."""
        while not self._events:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return Close(1006)
            try:
                self._events = self.codec.receive(data)
            except ProtocolError as error:
                raise AssertionError(f"the server sent a broken frame: {error}") from error
        return self._events.pop(0)

    def receive(self) -> str | bytes:
        """The next message (text or bytes), answering pings; :class:`ConnectionClosed` at the
        end."""
        while True:
            match self.receive_event():
                case TextMessage(text):
                    return text
                case BinaryMessage(data):
                    return data
                case Ping(payload):
                    self.sock.sendall(self.codec.pong(payload))
                case Close(code):
                    self._closed(code)
                    raise ConnectionClosed(code)

    def _closed(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
            if code != 1006:
                with contextlib.suppress(OSError):
                    self.sock.sendall(self.codec.close(1000))

    def wait_closed(self) -> int:
        """Read until the server closes; return its close code (messages are dropped)."""
        while self.close_code is None:
            event = self.receive_event()
            if type(event) is Close:
                self._closed(event.code)
        return self.close_code

    def close(self, code: int = 1000) -> int:
        """Send a close frame and wait for the server's; return the code it answered with."""
        try:
            self.sock.sendall(self.codec.close(code))
        except OSError:
            return 1006
        return self.wait_closed()

    def __enter__(self) -> WebSocketClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.sock.close()


def _headers(response: bytes) -> dict[str, str]:
    result = {}
    for line in response.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        result[name.strip().lower()] = value.strip()
    return result


def _client_deflate(response: bytes) -> Deflate | None:
    """The client's side of the permessage-deflate the server's response agreed to."""
    for line in response.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-extensions":
            params = {part.strip().partition(b"=")[0] for part in value.split(b";")}
            return Deflate(
                local_no_context_takeover=b"client_no_context_takeover" in params,
                remote_no_context_takeover=b"server_no_context_takeover" in params,
            )
    return None


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks)


def __getattr__(name: str) -> Any:
    # The in-process clients import Django's test machinery and the HTTP plugin's
    # application, which the socket client does not need: loaded on first use.
    if name == "WebsocketTestClient":
        from .testclient import WebsocketTestClient

        return WebsocketTestClient
    if name == "WSClient":
        from .wsclient import WSClient

        return WSClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # noqa: F822 - WebsocketTestClient and WSClient are loaded by __getattr__
    "ConnectionClosed",
    "HandshakeRefused",
    "WSClient",
    "WebSocketClient",
    "WebsocketTestClient",
]
