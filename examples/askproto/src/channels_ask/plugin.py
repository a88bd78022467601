"""The hook implementations: what makes ``ask`` a Channels protocol."""

from __future__ import annotations

from channels_core import hookimpl
from channels_core.listeners import StreamListener
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec

from .protocol import REPLY_PREFIX, REQUEST, AskFactory

DEFAULT_ENDPOINT = "tcp:7008:interface=127.0.0.1"

OPTIONS = (
    Option(
        "endpoint",
        help="The Twisted endpoint to listen on.",
        default=DEFAULT_ENDPOINT,
        flags=("--ask-endpoint",),
    ),
    Option(
        "reply_timeout",
        help="Seconds to wait for a consumer's answer before answering TIMEOUT.",
        default=5.0,
        type=float,
        above=0,
        flags=("--ask-reply-timeout",),
        fix="set it to a positive number of seconds, such as 5.",
    ),
    Option(
        "max_line_length",
        help="The longest question accepted, in bytes; a longer one closes the connection.",
        default=1024,
        type=int,
        minimum=1,
        flags=("--ask-max-line-length",),
    ),
)


def listeners(server):
    """One stream listener on the configured endpoint."""
    return [StreamListener(server.option("ask", "endpoint"), AskFactory(server))]


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``ask`` protocol and its options."""
    register(
        ProtocolSpec(
            name="ask",
            listeners=listeners,
            emits=(REQUEST,),
            consumes=(f"{REPLY_PREFIX}!",),
            options=OPTIONS,
            description="Line-based TCP questions, each answered by one consumer's reply.",
        )
    )


@hookimpl
def channels_register_channels(register) -> None:
    """The question channel and the answer channels."""
    register(
        ChannelSpec(
            REQUEST,
            sent_by="protocol",
            keys=("reply_channel", "question", "client", "server", "order"),
            description="A question a client asked; reply once on reply_channel.",
        )
    )
    register(
        ChannelSpec(
            f"{REPLY_PREFIX}!",
            sent_by="consumer",
            keys=("answer",),
            description="The answer, sent back as one line; later replies are dropped.",
        )
    )
