"""``channels stats``: what waits in a layer, in total and per channel."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from ..exceptions import ImproperlyConfigured
from .base import EXIT_OK, JSON_HELP, LAYER_HELP, CommandRegistry, format_table


def stats_report(alias: str, channels: Sequence[str] = ()) -> dict[str, Any]:
    """What ``channels stats --json`` prints: the layer's statistics, then each channel's.

    Raises :class:`ImproperlyConfigured` when the layer keeps no statistics, cannot be
    reached, or a channel name is invalid.
    """
    import asyncio

    from ..exceptions import ChannelsError, LayerUnavailable
    from ..layers import build_layer

    layer = build_layer(alias)
    backend = type(layer).__name__
    if "statistics" not in layer.extensions:
        raise ImproperlyConfigured(
            f"The layer {alias!r} ({backend}) keeps no statistics; channels stats needs a layer "
            "with the 'statistics' extension, such as redis or ipc."
        )

    async def collect() -> dict[str, Any]:
        try:
            totals = await layer.stats()
            per_channel = {name: await layer.stats(name) for name in channels}
        finally:
            await layer.close()
        return {
            "layer": alias,
            "backend": backend,
            "total": dataclasses.asdict(totals),
            "channels": {name: dataclasses.asdict(found) for name, found in per_channel.items()},
        }

    try:
        return asyncio.run(collect())
    except LayerUnavailable as error:
        raise ImproperlyConfigured(
            f"channels stats: the layer {alias!r} cannot be reached: {error}"
        ) from error
    except ChannelsError as error:
        # An invalid --channel name: the layer's own sentence says what is wrong with it.
        raise ImproperlyConfigured(f"channels stats: {error}") from error


def _format_age(age: float | None) -> str:
    return "-" if age is None else f"{age:.1f}s"


def _layer_stats(args: argparse.Namespace) -> int:
    report = stats_report(args.layer, args.channels)
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    rows = [
        (
            name,
            found["pending"],
            _format_age(found["oldest_age"]),
            found["full_count"],
            found["dropped"],
        )
        for name, found in [("(all channels)", report["total"]), *report["channels"].items()]
    ]
    print(f"Layer {report['layer']!r} ({report['backend']})")
    headers = ("CHANNEL", "PENDING", "OLDEST", "REFUSED (FULL)", "DROPPED (UNREADABLE)")
    print(format_table(headers, rows))
    return EXIT_OK


def add_stats_command(cli: CommandRegistry) -> None:
    """Add ``channels stats``."""
    stats = cli.command(
        "stats",
        help="Show what waits in a layer: messages pending, the oldest one's age, refused sends.",
        handler=_layer_stats,
    )
    stats.add_argument("--layer", default="default", help=LAYER_HELP)
    stats.add_argument(
        "--channel",
        dest="channels",
        action="append",
        default=[],
        metavar="NAME",
        help="Also show this channel's own statistics; repeatable.",
    )
    stats.add_argument("--json", action="store_true", help=JSON_HELP)
