"""``channels plugins``: the loaded plugins, those that failed or are blocked, and which
installed protocols are enabled."""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from typing import TYPE_CHECKING, Any

from .base import EXIT_OK, JSON_HELP, CommandRegistry, format_table, terminal_width, wrap_note

if TYPE_CHECKING:
    from ..plugins import Registry


def _blocked(registry: Registry) -> list[dict[str, Any]]:
    from ..plugins import ENTRY_POINT_GROUP, blocked_plugins
    from ..settings import get_settings

    blocked = blocked_plugins(get_settings().plugins_block)
    found = []
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in blocked and entry_point.name not in registry.plugins:
            dist = entry_point.dist
            found.append(
                {
                    "name": entry_point.name,
                    "distribution": dist.metadata["Name"] if dist is not None else None,
                    "version": dist.version if dist is not None else None,
                }
            )
    return sorted(found, key=lambda item: item["name"])


def protocols_report(registry: Registry) -> dict[str, Any]:
    """Which installed protocols ``channels serve`` enables, which it does not, and how to
    enable those: ``CHANNELS["PROTOCOLS"]``, or ``http`` and ``websocket`` by default."""
    from ..plugins import ENABLE_HINT
    from ..settings import get_settings

    configured = get_settings().protocols
    enabled = registry.default_protocols() if configured is None else list(configured)
    return {
        "enabled": sorted(enabled),
        "enabled_by": "default" if configured is None else "CHANNELS['PROTOCOLS']",
        "not_enabled": sorted(set(registry.protocols) - set(enabled)),
        "enable_with": ENABLE_HINT,
    }


def plugins_report(registry: Registry) -> dict[str, Any]:
    """What ``channels plugins --json`` prints: loaded, failed and blocked plugins, and the
    protocols enabled and not."""
    return {
        "plugins": [registry.plugins[name].as_dict() for name in sorted(registry.plugins)],
        "failed": [
            {
                "name": failure.name,
                "distribution": failure.distribution,
                "version": failure.version,
                "error": f"{type(failure.error).__name__}: {failure.error}",
            }
            for failure in registry.failures
        ],
        "blocked": _blocked(registry),
        "protocols": protocols_report(registry),
    }


def _short_hook(name: str) -> str:
    return name.removeprefix("channels_")


def _list_plugins(args: argparse.Namespace) -> int:
    from ..plugins import get_registry

    report = plugins_report(get_registry())
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    rows = [
        (
            plugin["name"],
            plugin["distribution"] or "-",
            plugin["version"] or "-",
            ", ".join(_short_hook(hook) for hook in plugin["hooks"]) or "-",
            "; ".join(f"{kind}: {', '.join(names)}" for kind, names in plugin["registered"].items())
            or "-",
        )
        for plugin in report["plugins"]
    ]
    width = terminal_width()
    headers = ("PLUGIN", "DISTRIBUTION", "VERSION", "HOOKS", "REGISTERED")
    print(format_table(headers, rows, width))
    notes = [
        f"Failed to import {failure['name']!r} from {failure['distribution']} "
        f"{failure['version']}: {failure['error']}"
        for failure in report["failed"]
    ]
    notes += [
        f"Blocked: {blocked['name']!r} from {blocked['distribution']} {blocked['version']}"
        for blocked in report["blocked"]
    ]
    for note in notes:
        print("\n" + wrap_note(note, width))
    protocols = report["protocols"]
    enabled = ", ".join(protocols["enabled"]) or "none"
    print("\n" + wrap_note(f"Protocols enabled ({protocols['enabled_by']}): {enabled}.", width))
    if protocols["not_enabled"]:
        print(
            wrap_note(
                f"Installed but not enabled: {', '.join(protocols['not_enabled'])}; enable "
                f"them with {protocols['enable_with']}.",
                width,
            )
        )
    return EXIT_OK


def add_plugins_command(cli: CommandRegistry) -> None:
    """Add ``channels plugins [--json]``."""
    command = cli.command(
        "plugins",
        help="List the loaded plugins, what they registered, and those that failed.",
        handler=_list_plugins,
    )
    command.add_argument("--json", action="store_true", help=JSON_HELP)
