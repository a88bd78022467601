"""``channels worker``: consume the routed channels of a layer and run their consumers."""

from __future__ import annotations

import argparse

from .base import LAYER_HELP, CommandRegistry


def _run_worker(args: argparse.Namespace) -> int:
    from ..exceptions import ImproperlyConfigured
    from ..settings import NO_SETTINGS_MODULE, get_settings
    from ..worker import run_worker

    if not get_settings().from_django:
        raise ImproperlyConfigured(NO_SETTINGS_MODULE)

    return run_worker(
        alias=args.layer,
        only_channels=args.only_channels,
        exclude_channels=args.exclude_channels,
        threads=args.threads,
    )


def add_worker_command(cli: CommandRegistry) -> None:
    """Add ``channels worker``."""
    worker = cli.command(
        "worker",
        help="Run a worker: consume the routed channels of a layer and run their consumers.",
        handler=_run_worker,
    )
    worker.add_argument("--layer", default="default", help=LAYER_HELP)
    worker.add_argument(
        "--only-channels",
        action="append",
        default=[],
        metavar="GLOB",
        help="Consume only the routed channels matching this glob; repeatable.",
    )
    worker.add_argument(
        "--exclude-channels",
        action="append",
        default=[],
        metavar="GLOB",
        help="Do not consume the routed channels matching this glob; repeatable.",
    )
    worker.add_argument(
        "--threads",
        type=int,
        default=None,
        help="How many consumers run at once, the size of the sync consumers' thread pool.",
    )
