"""``channels delay``: run the delay server, which delivers what is sent to ``asgi.delay``."""

from __future__ import annotations

import argparse

from .base import LAYER_HELP, CommandRegistry


def add_delay_arguments(parser: argparse.ArgumentParser) -> None:
    """The delay server's options, for ``channels delay`` and ``manage.py rundelay``."""
    from ..delay import DEFAULT_MAX_DELAY

    parser.add_argument("--layer", default="default", help=LAYER_HELP)
    parser.add_argument(
        "--max-delay",
        type=float,
        default=DEFAULT_MAX_DELAY,
        metavar="SECONDS",
        help="Refuse (log and drop) requests delayed longer than this "
        f"(default {DEFAULT_MAX_DELAY:.10g}, 30 days).",
    )


def _run_delay_server(args: argparse.Namespace) -> int:
    from ..delay import run_delay_server

    return run_delay_server(alias=args.layer, max_delay=args.max_delay)


def add_delay_command(cli: CommandRegistry) -> None:
    """Add ``channels delay``."""
    delay = cli.command(
        "delay",
        help="Run the delay server: deliver the messages sent to asgi.delay when their delay "
        "is up, kept in the layer meanwhile.",
        handler=_run_delay_server,
    )
    add_delay_arguments(delay)
