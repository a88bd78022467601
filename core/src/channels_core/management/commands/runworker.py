"""``manage.py runworker``: run a Channels worker for this Django project."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_core.exceptions import ImproperlyConfigured
from channels_core.worker import run_worker

VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class Command(BaseCommand):
    """Receive on the channels the routing handles and run their consumers until SIGTERM."""

    help = "Run a Channels worker: consume the routed channels of a channel layer."

    def add_arguments(self, parser: CommandParser) -> None:
        """The worker's options."""
        parser.add_argument(
            "--layer",
            default="default",
            help="The CHANNEL_LAYERS alias to consume from (default: %(default)s).",
        )
        parser.add_argument(
            "--only-channels",
            action="append",
            default=[],
            metavar="GLOB",
            help="Listen only on routed channels matching this glob; repeatable.",
        )
        parser.add_argument(
            "--exclude-channels",
            action="append",
            default=[],
            metavar="GLOB",
            help="Do not listen on routed channels matching this glob; repeatable.",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="How many consumers run at once, the size of the sync consumers' thread pool.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Log to stderr at the verbosity asked for, then run the worker."""
        channels_logger = logging.getLogger("channels_core")
        # The project's LOGGING wins; without any handler, the start line would be invisible.
        if not channels_logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            channels_logger.addHandler(handler)
        channels_logger.setLevel(VERBOSITY_LEVELS.get(options["verbosity"], logging.INFO))
        try:
            status = run_worker(
                alias=options["layer"],
                only_channels=options["only_channels"],
                exclude_channels=options["exclude_channels"],
                threads=options["threads"],
            )
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from error
        if status:
            raise SystemExit(status)
