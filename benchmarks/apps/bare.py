"""The bare reference server: the ceiling of one Python process on uvloop.

``GET /hello/`` answers ``hello`` (keep-alive), parsed with httptools; a request with
``Upgrade: websocket`` becomes a hand-written WebSocket echo (no extensions, no fragments,
no validation beyond what echoing needs). It has no routing, no consumers, no Django: it shows
how fast the loop and the parser alone go, and checks that the load generators are faster
than any server measured.

Usage::

    python benchmarks/apps/bare.py PORT
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import signal
import sys

import httptools
import uvloop

HELLO = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n"
    b"connection: keep-alive\r\n\r\nhello"
)
WS_GUID = b"258EAFA5-E914-47A5-95CA-C5AB0DC85B11"


class BareProtocol(asyncio.Protocol):
    """HTTP/1.1 hello until an upgrade, then a WebSocket echo on the same connection."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.key = b""
        self.websocket = False
        self.buffer = b""

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"sec-websocket-key":
            self.key = value

    def on_message_complete(self) -> None:
        if not self.key:
            self.transport.write(HELLO)

    def data_received(self, data: bytes) -> None:
        if self.websocket:
            self.frames(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                b"connection: Upgrade\r\nsec-websocket-accept: " + accept + b"\r\n\r\n"
            )
            self.websocket = True
            self.frames(data[upgrade.args[0] :])

    def frames(self, data: bytes) -> None:
        """Echo every complete client frame (masked, payload under 64 KiB) unmasked."""
        buffer = self.buffer + data if self.buffer else data
        position = 0
        replies = []
        end = len(buffer)
        while end - position >= 6:
            first = buffer[position]
            length = buffer[position + 1] & 0x7F
            header = 6
            if length == 126:
                if end - position < 8:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 8
            if end - position < header + length:
                break
            mask = buffer[position + header - 4 : position + header]
            start = position + header
            position = start + length
            opcode = first & 0x0F
            if opcode == 8:
                self.transport.write(b"\x88\x02\x03\xe8")
                self.transport.close()
                return
            masked = int.from_bytes(buffer[start:position], "big")
            key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
            payload = (masked ^ key).to_bytes(length, "big")
            reply_opcode = 0x8A if opcode == 9 else first
            if length < 126:
                replies.append(bytes((reply_opcode, length)) + payload)
            else:
                replies.append(bytes((reply_opcode, 126)) + length.to_bytes(2, "big") + payload)
        self.buffer = buffer[position:]
        if replies:
            self.transport.write(b"".join(replies))


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:*port* until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set_result, None)
    server = await loop.create_server(BareProtocol, "127.0.0.1", port, backlog=4096)
    print(f"bare listening on 127.0.0.1:{port}", flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
