"""``manage.py rundelay``: run the delay server (``channels delay``) for this Django project."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_core.cli import add_delay_arguments, configure_logging
from channels_core.delay import run_delay_server
from channels_core.exceptions import ImproperlyConfigured


class Command(BaseCommand):
    """Deliver the messages sent to ``asgi.delay`` when their delay is up, until SIGTERM."""

    help = "Run the Channels delay server: deliver the messages sent to asgi.delay later."
    # The delay server routes nothing, so the project's routing checks do not concern it; it
    # checks the layer it uses itself, before it starts.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """The options of ``channels delay``."""
        add_delay_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        """Log to stderr at the verbosity asked for, then run the delay server."""
        configure_logging(options["verbosity"])
        try:
            status = run_delay_server(alias=options["layer"], max_delay=options["max_delay"])
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from error
        if status:
            raise SystemExit(status)
