"""What every ``channels`` command shares: the command registry, exit codes, tables."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ..exceptions import PluginError

if TYPE_CHECKING:
    from ..plugins import Registry

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_USAGE = 2
BUILTIN = "(built in)"
LAYER_HELP = "The CHANNEL_LAYERS alias to use (default: default)."
JSON_HELP = "Print JSON for machines."
Handler = Callable[[argparse.Namespace], "int | None"]


class CommandRegistry:
    """The sub-commands of ``channels``: what ``channels_add_commands(cli)`` receives.

    ``registry`` is the process's :class:`~channels_core.plugins.Registry`, for commands whose
    arguments depend on what is installed.
    """

    def __init__(
        self,
        subparsers: argparse._SubParsersAction,
        registry: Registry,
        parents: Sequence[argparse.ArgumentParser] = (),
    ) -> None:
        self.registry = registry
        self._subparsers = subparsers
        self._parents = list(parents)
        self.owners: dict[str, str] = {}
        self._plugin = BUILTIN

    def for_plugin(self, plugin: str) -> CommandRegistry:
        """Attribute the next :meth:`command` calls to *plugin* (for duplicate errors)."""
        self._plugin = plugin
        return self

    def command(self, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
        """Add the sub-command *name*; ``handler(args)`` runs it and returns its exit status.

        Returns the sub-command's :class:`argparse.ArgumentParser` to add arguments to.
        Raises :class:`PluginError` when another plugin already added *name*.
        """
        if name in self.owners:
            raise PluginError(
                f"The command {name!r} is registered twice: by plugin {self.owners[name]!r} and "
                f"by plugin {self._plugin!r}. Uninstall or block one of them "
                "(CHANNELS_PLUGINS_BLOCK)."
            )
        parser = self._subparsers.add_parser(
            name, help=help, description=help, parents=self._parents, allow_abbrev=False
        )
        parser.set_defaults(handler=handler)
        self.owners[name] = self._plugin
        return parser


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Rows as left-aligned columns under *headers*."""
    rows = [list(map(str, row)) for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [[*headers], ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
