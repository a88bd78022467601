"""The thin Twisted adapter: a connection's bytes to the parser, its events to the server."""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import Factory, Protocol

from .parser import LineParser, LineTooLong

RECEIVE = "lineecho.receive"
REPLY_PREFIX = "lineecho.send"


def _address(address: Any) -> list:
    return [address.host, address.port]


class LineProtocol(Protocol):
    """One TCP connection: each line becomes a ``lineecho.receive`` event."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.parser = LineParser(server.option("lineecho", "max_line_length"))
        self.order = 0
        self.reply_channel = ""

    def connectionMade(self) -> None:
        """Bind a fresh reply channel to this connection."""
        self.reply_channel = self.server.open_reply(REPLY_PREFIX, self.reply)
        self.client = _address(self.transport.getPeer())
        self.local = _address(self.transport.getHost())

    def dataReceived(self, data: bytes) -> None:
        """Parse; emit one event per line; refuse an oversized line and hang up."""
        try:
            lines = self.parser.feed(data)
        except LineTooLong as error:
            self.transport.write(f"ERROR {error}\n".encode())
            self.transport.loseConnection()
            return
        for line in lines:
            self.server.emit_nowait(
                RECEIVE,
                {
                    "reply_channel": self.reply_channel,
                    "line": line.decode("utf-8", "replace"),
                    "client": self.client,
                    "server": self.local,
                    "order": self.order,
                },
            )
            self.order += 1

    def reply(self, content: dict) -> None:
        """A consumer's reply: ``{"line": ...}`` writes a line, ``{"close": True}`` hangs up."""
        if "line" in content:
            self.transport.write(content["line"].encode() + b"\n")
        if content.get("close"):
            self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        """Replies to this connection are dropped from now on."""
        self.server.close_reply(self.reply_channel)


class LineFactory(Factory):
    """Builds a :class:`LineProtocol` per connection, all sharing the server."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def buildProtocol(self, addr: Any) -> LineProtocol:
        """A protocol for the new connection."""
        return LineProtocol(self.server)
