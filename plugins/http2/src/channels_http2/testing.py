"""A small blocking HTTP/2 client on the ``h2`` library, for tests of servers with the
``http2`` protocol: raw frames when a test needs them (resets, floods), and RFC 8441 WebSocket
streams, which no Python HTTP client offers. Loopback only (127.0.0.1)."""

from __future__ import annotations

import os
import socket
import ssl
import struct

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)

TIMEOUT = 10


class H2Client:
    """One HTTP/2 connection to 127.0.0.1:*port* (TLS with ALPN h2 when *context* is given)."""

    def __init__(self, port: int, context: ssl.SSLContext | None = None, settings=None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        if context is not None:
            context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(sock, server_hostname="127.0.0.1")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.h2.initiate_connection()
        if settings:
            self.h2.update_settings(settings)
        self.flush()
        self.events: list = []
        self.terminated: ConnectionTerminated | None = None

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def receive(self) -> list:
        """Read once from the socket; the events (also kept in ``events``)."""
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        events = self.h2.receive_data(data)
        for event in events:
            if isinstance(event, DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if isinstance(event, ConnectionTerminated):
                self.terminated = event
        self.flush()
        self.events.extend(events)
        return events

    def request(self, method: str, path: str, body: bytes = b"", headers=()) -> int:
        """Open a stream with a request; its stream id."""
        stream_id = self.h2.get_next_available_stream_id()
        head = [
            (b":method", method.encode()),
            (b":path", path.encode()),
            (b":scheme", b"http"),
            (b":authority", b"127.0.0.1"),
            *headers,
        ]
        self.h2.send_headers(stream_id, head, end_stream=not body)
        if body:
            self.h2.send_data(stream_id, body, end_stream=True)
        self.flush()
        return stream_id

    def response(self, stream_id: int) -> tuple[int, dict, bytes]:
        """Wait for the whole response of *stream_id*: status, headers, body."""
        status, headers, body = None, {}, b""
        done = False
        seen = 0
        while not done:
            while seen < len(self.events):
                event = self.events[seen]
                seen += 1
                if getattr(event, "stream_id", None) != stream_id:
                    continue
                if isinstance(event, ResponseReceived):
                    headers = dict(event.headers)
                    status = int(headers[b":status"])
                elif isinstance(event, DataReceived):
                    body += event.data
                elif isinstance(event, StreamEnded):
                    done = True
                elif isinstance(event, StreamReset):
                    raise ConnectionResetError(f"stream {stream_id} reset: {event.error_code!r}")
            if not done:
                gone = self.terminated
                if gone is not None and (gone.error_code or gone.last_stream_id < stream_id):
                    raise ConnectionError(f"GOAWAY: {gone.error_code!r}")
                self.receive()
        return status, headers, body

    def close(self) -> None:
        self.sock.close()


def masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client WebSocket frame (masked)."""
    first = (0x80 if fin else 0) | opcode
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse_frames(data: bytes, limit: int = 0) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete unmasked server frames in *data* (at most *limit*, 0: all), and the rest."""
    frames = []
    while len(data) >= 2 and not (limit and len(frames) >= limit):
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        offset = 2
        if length == 126:
            if len(data) < 4:
                break
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                break
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + length:
            break
        frames.append((opcode, data[offset : offset + length]))
        data = data[offset + length :]
    return frames, data


class H2WebSocket:
    """A WebSocket over one HTTP/2 stream (RFC 8441 extended CONNECT)."""

    def __init__(self, client: H2Client, path: str, headers=()) -> None:
        self.client = client
        self.stream_id = client.h2.get_next_available_stream_id()
        client.h2.send_headers(
            self.stream_id,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", path.encode()),
                (b":authority", b"127.0.0.1"),
                (b"sec-websocket-version", b"13"),
                *headers,
            ],
        )
        client.flush()
        self.status = None
        self.headers: dict = {}
        self.buffer = b""
        self.ended = False
        self.reset = None
        self._seen = 0

    def _pump(self) -> None:
        events = self.client.events
        while self._seen >= len(events):
            if self.client.terminated is not None:
                raise ConnectionError("GOAWAY")
            self.client.receive()
        event = events[self._seen]
        self._seen += 1
        if getattr(event, "stream_id", None) != self.stream_id:
            return
        if isinstance(event, ResponseReceived):
            self.headers = dict(event.headers)
            self.status = int(self.headers[b":status"])
        elif isinstance(event, DataReceived):
            self.buffer += event.data
        elif isinstance(event, StreamEnded):
            self.ended = True
        elif isinstance(event, StreamReset):
            self.reset = event.error_code
            self.ended = True

    def wait_status(self) -> int:
        while self.status is None and not self.ended:
            self._pump()
        return self.status

    def send(self, opcode: int, payload: bytes) -> None:
        self.client.h2.send_data(self.stream_id, masked_frame(opcode, payload))
        self.client.flush()

    def send_text(self, text: str) -> None:
        self.send(0x1, text.encode())

    def receive_frame(self) -> tuple[int, bytes]:
        """The next whole frame from the server: (opcode, payload)."""
        while True:
            frames, rest = parse_frames(self.buffer, limit=1)
            if frames:
                self.buffer = rest
                return frames[0]
            if self.ended:
                raise ConnectionError("the stream ended")
            self._pump()

    def receive_text(self) -> str:
        opcode, payload = self.receive_frame()
        assert opcode == 0x1, (opcode, payload)
        return payload.decode()

    def close(self, code: int = 1000) -> int:
        """Send a close frame; the server's close code."""
        self.send(0x8, struct.pack("!H", code))
        while True:
            opcode, payload = self.receive_frame()
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if payload else 1005
