"""The hook implementations: what makes ``lineecho`` a Channels protocol."""

from __future__ import annotations

import argparse
import socket

from channels_core import hookimpl
from channels_core.listeners import StreamListener
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec

from .protocol import RECEIVE, REPLY_PREFIX, LineFactory

DEFAULT_ENDPOINT = "tcp:7007:interface=127.0.0.1"


def listeners(server):
    """One stream listener on the configured endpoint."""
    return [StreamListener(server.option("lineecho", "endpoint"), LineFactory(server))]


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``lineecho`` protocol and its options."""
    register(
        ProtocolSpec(
            name="lineecho",
            listeners=listeners,
            emits=(RECEIVE,),
            consumes=(f"{REPLY_PREFIX}!",),
            options=(
                Option(
                    "endpoint",
                    help="The Twisted endpoint to listen on.",
                    default=DEFAULT_ENDPOINT,
                    flags=("--lineecho-endpoint",),
                ),
                Option(
                    "max_line_length",
                    help="The longest line accepted, in bytes; longer ones close the connection.",
                    default=1024,
                    type=int,
                    flags=("--lineecho-max-line-length",),
                ),
            ),
            description="Line-based TCP: each line is an event, each reply a line.",
        )
    )


@hookimpl
def channels_register_channels(register) -> None:
    """The event channel and the reply channels."""
    register(
        ChannelSpec(
            RECEIVE,
            sent_by="protocol",
            keys=("reply_channel", "line", "client", "server", "order"),
            description="A line a client sent.",
        )
    )
    register(
        ChannelSpec(
            f"{REPLY_PREFIX}!",
            sent_by="consumer",
            optional_keys=("line", "close"),
            description="A line to send back, and/or close the connection.",
        )
    )


def send_lines(args: argparse.Namespace) -> int:
    """``channels lineecho-send PORT LINE...``: send lines, print one reply line for each."""
    with socket.create_connection(("127.0.0.1", args.port), timeout=10) as connection:
        replies = connection.makefile("rb")
        for line in args.lines:
            connection.sendall(line.encode() + b"\n")
            print(replies.readline().decode().rstrip("\n"))
    return 0


@hookimpl
def channels_add_commands(cli) -> None:
    """A small client, to show a plugin adding a command."""
    command = cli.command(
        "lineecho-send", help="Send lines to a lineecho server on 127.0.0.1.", handler=send_lines
    )
    command.add_argument("port", type=int)
    command.add_argument("lines", nargs="+")
