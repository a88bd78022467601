"""``manage.py channels <command>``: the ``channels`` command line inside a Django project."""

from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_core.cli import main


class Command(BaseCommand):
    """Delegates to :func:`channels_core.cli.main` with the project's settings already set."""

    help = "Run a channels command: plugins, hooks, serve, worker, and those plugins add."

    def run_from_argv(self, argv: list[str]) -> None:
        """``manage.py channels ARGS``: hand ARGS to the channels parser, exit with its status."""
        raise SystemExit(main(argv[2:], prog=f"{os.path.basename(argv[0])} channels"))

    def add_arguments(self, parser: CommandParser) -> None:
        """Everything after ``channels`` goes to the channels parser (for ``call_command``)."""
        parser.add_argument("arguments", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command("channels", "plugins", "--json")``."""
        status = main(options["arguments"], prog="channels")
        if status:
            raise CommandError(
                f"channels {' '.join(options['arguments'])} exited with status {status}.",
                returncode=status,
            )
