"""The hook implementations: the ``udp`` protocol, its options, channels and shut-down."""

from __future__ import annotations

import logging
from typing import Any

from channels_core import hookimpl
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec

from .limits import parse_address

logger = logging.getLogger(__name__)

RECEIVE = "udp.receive"
REPLY_PREFIX = "udp.send"
# The largest payload of one IPv4 UDP datagram.
MAX_UDP_PAYLOAD = 65507

OPTIONS = (
    Option("listen", help="An address to receive datagrams on, HOST:PORT ([::1]:9000 for "
           "IPv6, port 0 for a free one); repeatable.", default=(), flags=("--udp",),
           multiple=True, validator=parse_address, fix="set it to a list of HOST:PORT "
           "strings, such as ['127.0.0.1:9000']."),
    Option("max_datagram_size", help="The largest datagram accepted, in bytes; larger ones "
           "are dropped and counted.", default=8192, type=int, minimum=1,
           maximum=MAX_UDP_PAYLOAD, flags=("--udp-max-datagram-size",),
           fix=f"set it to a number of bytes from 1 to {MAX_UDP_PAYLOAD}, such as 1200."),
    Option("rate", help="Datagrams per second each client address may send, on average; "
           "more are dropped and counted (0: no limit).", default=0.0, type=float, minimum=0,
           flags=("--udp-rate",), fix="set it to datagrams per second per client, such as "
           "100, or 0 for no limit."),
    Option("burst", help="Datagrams a client address may send at once over the rate "
           "(default: one second's worth of rate).", default=None, type=int, above=0,
           flags=("--udp-burst",), fix="set it to a whole number of datagrams, at least 1, "
           "or None for one second's worth of rate."),
    Option("client_timeout", help="Seconds after its last datagram that a client address "
           "is forgotten, with its reply channel and rate-limit bucket.", default=60.0,
           type=float, above=0, flags=("--udp-client-timeout",),
           fix="set it to a positive number of seconds, such as 60."),
    Option("max_clients", help="Client addresses remembered per listening address; the "
           "oldest is forgotten to make room.", default=10000, type=int, above=0,
           flags=("--udp-max-clients",),
           fix="set it to a whole number of addresses, such as 10000."),
)  # fmt: skip


def listeners(server: Any) -> list:
    """One datagram listener per ``listen`` address."""
    from .protocol import UdpListener, register_listeners

    options = server.options["udp"]
    if not options["listen"]:
        logger.warning(
            "udp is enabled but listens nowhere: give --udp HOST:PORT or "
            "CHANNELS['OPTIONS']['udp']['listen'] = ['127.0.0.1:9000']."
        )
    created = [
        UdpListener(server, *parse_address(address), options) for address in options["listen"]
    ]
    register_listeners(server, created)
    return created


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``udp`` protocol."""
    register(
        ProtocolSpec(
            name="udp",
            listeners=listeners,
            emits=(RECEIVE,),
            consumes=(f"{REPLY_PREFIX}!",),
            options=OPTIONS,
            description="UDP: each datagram an event, each reply a datagram back.",
        )
    )


@hookimpl
def channels_register_channels(register) -> None:
    """``udp.receive`` and its reply channels."""
    register(
        ChannelSpec(
            RECEIVE,
            sent_by="protocol",
            keys=("reply_channel", "data", "client", "server"),
            description="A datagram: its bytes, and the client and server [host, port].",
        )
    )
    register(
        ChannelSpec(
            f"{REPLY_PREFIX}!",
            sent_by="consumer",
            keys=("data",),
            description="A datagram (bytes) to send back to the client.",
        )
    )


@hookimpl
def channels_shutdown(server) -> None:
    """Close the UDP sockets once the work in flight is done, and log what they counted."""
    from .protocol import close_listeners

    close_listeners(server)
