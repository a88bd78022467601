"""The hook implementations: what makes ``ticker`` a Channels protocol."""

from __future__ import annotations

from channels_core import hookimpl
from channels_core.listeners import TaskListener
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec

from .source import TICK, Ticker

OPTIONS = (
    Option(
        "interval",
        help="Seconds between two ticks.",
        default=1.0,
        type=float,
        above=0,
        flags=("--ticker-interval",),
        fix="set it to a positive number of seconds, such as 1 or 0.5.",
    ),
    Option(
        "name",
        help="The name every tick carries, to tell tickers apart.",
        default="ticker",
        flags=("--ticker-name",),
    ),
)


def listeners(server):
    """One task listener: the ticker, with its options."""
    ticker = Ticker(server.option("ticker", "name"), server.option("ticker", "interval"))
    return [TaskListener(ticker.run, description=ticker.describe())]


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``ticker`` protocol: no socket, only a timer."""
    register(
        ProtocolSpec(
            name="ticker",
            listeners=listeners,
            emits=(TICK,),
            options=OPTIONS,
            description="A ticker.tick event every interval seconds.",
        )
    )


@hookimpl
def channels_register_channels(register) -> None:
    """The tick channel."""
    register(
        ChannelSpec(
            TICK,
            sent_by="protocol",
            keys=("count", "at", "name"),
            description="A tick: its count from 1, the Unix time it fired, the ticker's name.",
        )
    )
