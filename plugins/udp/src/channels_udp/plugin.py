"""The hook implementations: the ``udp`` protocol, its options, channels and shut-down."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from channels_core import hookimpl
from channels_core.exceptions import ImproperlyConfigured
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec, is_positive_number

from .limits import parse_address

logger = logging.getLogger(__name__)

RECEIVE = "udp.receive"
REPLY_PREFIX = "udp.send"
# The largest payload of one IPv4 UDP datagram.
MAX_UDP_PAYLOAD = 65507

OPTIONS = (
    Option("listen", help="An address to receive datagrams on, HOST:PORT ([::1]:9000 for "
           "IPv6, port 0 for a free one); repeatable.", default=(), flags=("--udp",),
           multiple=True),
    Option("max_datagram_size", help="The largest datagram accepted, in bytes; larger ones "
           "are dropped and counted.", default=8192, type=int,
           flags=("--udp-max-datagram-size",)),
    Option("rate", help="Datagrams per second each client address may send, on average; "
           "more are dropped and counted (0: no limit).", default=0.0, type=float,
           flags=("--udp-rate",)),
    Option("burst", help="Datagrams a client address may send at once over the rate "
           "(default: one second's worth of rate).", default=None, type=int,
           flags=("--udp-burst",)),
    Option("client_timeout", help="Seconds after its last datagram that a client address "
           "is forgotten, with its reply channel and rate-limit bucket.", default=60.0,
           type=float, flags=("--udp-client-timeout",)),
    Option("max_clients", help="Client addresses remembered per listening address; the "
           "oldest is forgotten to make room.", default=10000, type=int,
           flags=("--udp-max-clients",)),
)  # fmt: skip


def check_options(options: Mapping[str, Any], where: str = "CHANNELS['OPTIONS']['udp']") -> None:
    """Raise :class:`ImproperlyConfigured` for the first bad value in *options*."""

    def bad(key: str, fix: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{where}[{key!r}] is {options[key]!r}; {fix}")

    if "listen" in options:
        addresses = options["listen"]
        if isinstance(addresses, str) or not isinstance(addresses, (list, tuple)):
            raise bad("listen", "set it to a list of HOST:PORT strings, such as "
                      "['127.0.0.1:9000'].")  # fmt: skip
        for address in addresses:
            try:
                parse_address(address)
            except ValueError as error:
                raise bad("listen", f"{error}.") from None
    size = options.get("max_datagram_size")
    if "max_datagram_size" in options and (
        not is_positive_number(size) or int(size) != size or size > MAX_UDP_PAYLOAD
    ):
        raise bad("max_datagram_size", f"set it to a number of bytes from 1 to "
                  f"{MAX_UDP_PAYLOAD}, such as 1200.")  # fmt: skip
    if "rate" in options and not is_positive_number(options["rate"], zero=True):
        raise bad("rate", "set it to datagrams per second per client, such as 100, or 0 "
                  "for no limit.")  # fmt: skip
    burst = options.get("burst")
    if burst is not None and (not is_positive_number(burst) or int(burst) != burst):
        raise bad("burst", "set it to a whole number of datagrams, at least 1, or None for "
                  "one second's worth of rate.")  # fmt: skip
    timeout = options.get("client_timeout")
    if "client_timeout" in options and not is_positive_number(timeout):
        raise bad("client_timeout", "set it to a positive number of seconds, such as 60.")
    clients = options.get("max_clients")
    if "max_clients" in options and (not is_positive_number(clients) or int(clients) != clients):
        raise bad("max_clients", "set it to a whole number of addresses, such as 10000.")


def listeners(server: Any) -> list:
    """One datagram listener per ``listen`` address."""
    from .protocol import UdpListener, register_listeners

    options = server.options["udp"]
    check_options(options, where="The udp options")
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
def channels_configure(settings: Any) -> None:
    """Check ``CHANNELS['OPTIONS']['udp']``."""
    check_options(settings.protocol_options("udp"))


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
