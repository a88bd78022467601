"""``channels hooks``: each hook specification and the plugins implementing it."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .base import EXIT_OK, JSON_HELP, CommandRegistry, format_table, terminal_width

if TYPE_CHECKING:
    from ..plugins import Registry


def hooks_report(registry: Registry) -> list[dict[str, Any]]:
    """What ``channels hooks --json`` prints: each hook, its summary and its implementers."""
    from .. import hookspecs

    report = []
    for name, plugins in registry.hooks_table().items():
        doc = (getattr(hookspecs, name).__doc__ or "").strip()
        report.append(
            {"name": name, "description": doc.splitlines()[0] if doc else "", "plugins": plugins}
        )
    return report


def _list_hooks(args: argparse.Namespace) -> int:
    from ..plugins import get_registry

    report = hooks_report(get_registry())
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    rows = [
        (hook["name"], ", ".join(hook["plugins"]) or "-", hook["description"]) for hook in report
    ]
    print(format_table(("HOOK", "PLUGINS", "DESCRIPTION"), rows, terminal_width()))
    return EXIT_OK


def add_hooks_command(cli: CommandRegistry) -> None:
    """Add ``channels hooks [--json]``."""
    command = cli.command(
        "hooks",
        help="List the hook specifications and the plugins implementing each.",
        handler=_list_hooks,
    )
    command.add_argument("--json", action="store_true", help=JSON_HELP)
