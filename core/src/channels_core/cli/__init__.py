"""The ``channels`` command line (also ``manage.py channels``).

::

    channels [--settings MODULE] [--pythonpath DIR] [-v {0,1,2,3}] <command> ...

Built in: ``plugins`` and ``hooks`` (both with ``--json``). The kernel plugin adds ``worker``,
``serve``, ``stats`` and ``delay`` through the ``channels_add_commands`` hook, as any plugin
adds its own commands.
``serve`` grows one flag per option each installed protocol declares (``--udp-port``), plus the
generic ``--option PROTOCOL.NAME=VALUE``; a boolean option's flag alone means true
(``--proxy-headers``, as in Daphne), and takes a value too (``--proxy-headers false``).
``--pythonpath`` is repeatable. Tables fit the terminal's width (``COLUMNS``).

Exit status: 0 on success, 1 for a configuration error (one sentence on stderr, no
traceback), 2 for a usage error.

One module per command (:mod:`.plugins`, :mod:`.hooks`, :mod:`.worker`, :mod:`.serve`,
:mod:`.stats`, :mod:`.delay`); :mod:`.base` holds what they share and :mod:`.entry` the parser
and :func:`main`. Every public name is importable from here.
"""

from __future__ import annotations

from .base import (
    BUILTIN,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_USAGE,
    BooleanFlag,
    CommandParser,
    CommandRegistry,
    Handler,
    format_table,
    terminal_width,
)
from .delay import add_delay_arguments, add_delay_command
from .entry import VERBOSITY_LEVELS, build_parser, configure_logging, main, setup_django
from .hooks import hooks_report
from .plugins import plugins_report, protocols_report
from .serve import add_serve_command, protocol_overrides, serve_target
from .stats import add_stats_command, stats_report
from .worker import add_worker_command

__all__ = [
    "BUILTIN",
    "EXIT_CONFIG",
    "EXIT_OK",
    "EXIT_USAGE",
    "VERBOSITY_LEVELS",
    "BooleanFlag",
    "CommandParser",
    "CommandRegistry",
    "Handler",
    "add_delay_arguments",
    "add_kernel_commands",
    "build_parser",
    "configure_logging",
    "format_table",
    "hooks_report",
    "main",
    "plugins_report",
    "protocol_overrides",
    "protocols_report",
    "serve_target",
    "setup_django",
    "stats_report",
    "terminal_width",
]


def add_kernel_commands(cli: CommandRegistry) -> None:
    """Add ``worker``, ``serve``, ``stats`` and ``delay`` (the kernel plugin's
    ``channels_add_commands``)."""
    add_worker_command(cli)
    add_serve_command(cli)
    add_stats_command(cli)
    add_delay_command(cli)
