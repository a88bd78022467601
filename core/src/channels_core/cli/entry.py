"""The entry point of ``channels``: global options, Django set-up, the parser and ``main``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

from ..exceptions import ImproperlyConfigured
from .base import EXIT_CONFIG, EXIT_OK, EXIT_USAGE, CommandParser, CommandRegistry
from .hooks import add_hooks_command
from .plugins import add_plugins_command

if TYPE_CHECKING:
    from ..plugins import Registry

VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


def _add_global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """``--settings``, ``--pythonpath`` and ``-v``, on the main parser and every command."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--settings",
        default=default,
        metavar="MODULE",
        help="The Django settings module (sets DJANGO_SETTINGS_MODULE).",
    )
    parser.add_argument(
        "--pythonpath",
        action="append",
        default=default,
        metavar="DIR",
        help="A directory to add to the Python path, such as the project's root; repeatable "
        "(the first given is searched first).",
    )
    parser.add_argument(
        "-v",
        "--verbosity",
        type=int,
        choices=sorted(VERBOSITY_LEVELS),
        default=argparse.SUPPRESS if suppress else 1,
        help="0 warnings only, 1 normal (default), 2 and 3 debug.",
    )


def setup_django(settings: str | None, pythonpath: str | Sequence[str] | None) -> None:
    """Put *pythonpath* (a directory, or several in the order they are searched) at the
    front of the path, then set up Django when a settings module is named."""
    if isinstance(pythonpath, str):
        pythonpath = [pythonpath]
    sys.path[:0] = [os.path.abspath(directory) for directory in pythonpath or ()]
    if settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings
    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if not module:
        return
    import django
    from django.core.exceptions import ImproperlyConfigured as DjangoImproperlyConfigured

    try:
        django.setup()
    except ImportError as error:
        raise ImproperlyConfigured(
            f"The Django settings module {module!r} cannot be imported ({error}); fix --settings "
            "or DJANGO_SETTINGS_MODULE, and add the project directory with --pythonpath."
        ) from error
    except DjangoImproperlyConfigured as error:
        raise ImproperlyConfigured(f"Django is improperly configured: {error}") from error


def configure_logging(verbosity: int) -> None:
    """Log to stderr at the level *verbosity* asks for, unless the project set up logging."""
    logging.basicConfig(
        level=VERBOSITY_LEVELS.get(verbosity, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Twisted logs every factory start and port close at INFO: noise unless debugging.
    logging.getLogger("twisted").setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


def build_parser(registry: Registry, prog: str | None = None) -> argparse.ArgumentParser:
    """The full parser: global options, built-in commands, and every plugin's commands."""
    parser = CommandParser(
        prog=prog or "channels",
        description="Channels: event-driven, multi-protocol Django.",
        allow_abbrev=False,
    )
    _add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_global_options(common, suppress=True)
    subparsers = parser.add_subparsers(title="commands", metavar="<command>")
    cli = CommandRegistry(subparsers, registry, parents=[common])
    add_plugins_command(cli)
    add_hooks_command(cli)
    registry.call_per_plugin("channels_add_commands", cli.for_plugin, argname="cli")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run ``channels`` with *argv* (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_global_options(early, suppress=False)
    known, _ = early.parse_known_args(argv)
    try:
        setup_django(known.settings, known.pythonpath)
        configure_logging(known.verbosity)
        from ..plugins import get_registry

        parser = build_parser(get_registry(), prog)
    except ImproperlyConfigured as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    except pluggy.PluginValidationError as error:
        print(
            f"A plugin does not fit the hook specifications: {error}. Fix the hook's name or "
            "signature, or block the plugin (CHANNELS_PLUGINS_BLOCK).",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # argparse exits 2 on a usage error and 0 after --help.
        return EXIT_USAGE if stop.code else EXIT_OK
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: name a command.", file=sys.stderr)
        return EXIT_USAGE
    # The command line as given, for what starts copies of this command (serve --processes).
    args.command_line = argv
    try:
        return int(handler(args) or EXIT_OK)
    except ImproperlyConfigured as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
