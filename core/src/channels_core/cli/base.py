"""What every ``channels`` command shares: the command registry, exit codes, tables."""

from __future__ import annotations

import argparse
import itertools
import shutil
import textwrap
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from ..exceptions import PluginError
from ..options import boolean

if TYPE_CHECKING:
    from ..plugins import Registry

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_USAGE = 2
BUILTIN = "(built in)"
LAYER_HELP = "The CHANNEL_LAYERS alias to use (default: default)."
JSON_HELP = "Print JSON for machines."
COLUMN_GAP = "  "
Handler = Callable[[argparse.Namespace], "int | None"]


class BooleanFlag(argparse.Action):
    """A boolean option that is a flag, as in Daphne, and still takes a value.

    ``--proxy-headers`` alone is true; ``--proxy-headers false`` and ``--proxy-headers=off``
    give the value, converted by *convert* (:func:`~channels_core.options.boolean`). The word
    after the flag is its value only when *convert* takes it: any other word is left to the
    positional arguments, so ``channels serve --proxy-headers my_project.asgi:application``
    means what it does to Daphne (:class:`CommandParser` sees to that).
    """

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        convert: Callable[[str], bool] = boolean,
        **kwargs: object,
    ) -> None:
        super().__init__(option_strings, dest, nargs="?", const=True, **kwargs)
        self.convert = convert

    def takes(self, word: str) -> bool:
        """Whether *word* is a value of the flag rather than a positional argument."""
        try:
            self.convert(word)
        except ValueError:
            return False
        return True

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        """Store the flag's value: true when bare (or ``--flag=``), else the converted word."""
        if isinstance(values, str):
            try:
                values = self.convert(values) if values else self.const
            except ValueError as error:
                raise argparse.ArgumentError(self, str(error)) from error
        setattr(namespace, self.dest, values)


class CommandParser(argparse.ArgumentParser):
    """The parser of ``channels`` and its commands: a :class:`BooleanFlag` followed by a word
    it does not take is a bare flag, and the word is left to the positional arguments."""

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as argparse does, once the bare boolean flags are marked as such."""
        if args is not None:
            args = self._mark_bare_flags(list(args))
        return super().parse_known_args(args, namespace)

    def _mark_bare_flags(self, args: list[str]) -> list[str]:
        flags = {
            flag: action
            for action in self._actions
            if isinstance(action, BooleanFlag)
            for flag in action.option_strings
        }
        for index, word in enumerate(args[:-1]):
            if word == "--":
                break
            following = args[index + 1]
            action = flags.get(word)
            if (
                action is not None
                and not following.startswith(tuple(self.prefix_chars))
                and not action.takes(following)
            ):
                # "--flag=" is the bare flag: argparse then leaves the next word alone.
                args[index] = f"{word}="
        return args


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


def terminal_width() -> int:
    """The terminal's width in columns: ``COLUMNS``, else the terminal's, else 80."""
    return shutil.get_terminal_size().columns


def _fit(natural: list[int], minimum: list[int], available: int) -> list[int]:
    """Column widths that sum to at most *available* if they can: each column's width is
    one level, bounded by the column's *minimum* and *natural* width, the highest level
    that fits (narrow columns keep their width, the wide ones are cut down evenly)."""

    def at(level: int) -> list[int]:
        return [max(low, min(high, level)) for low, high in zip(minimum, natural, strict=True)]

    level = max(natural)
    while level > 0 and sum(at(level)) > available:
        level -= 1
    return at(level)


def _lines(cell: str, width: int) -> list[str]:
    if len(cell) <= width:
        return [cell]
    return textwrap.wrap(cell, width, break_on_hyphens=False) or [""]


def format_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], width: int | None = None
) -> str:
    """Rows as left-aligned columns under *headers*.

    With *width* (such as :func:`terminal_width`), the widest columns are narrowed and their
    cells wrapped onto more lines, between words when that fits, so that no line is longer
    than *width* (unless the headers alone are).
    """
    rows = [list(map(str, row)) for row in rows]
    columns = list(zip(headers, *rows, strict=False))
    widths = natural = [max(map(len, column)) for column in columns]
    if width is not None:
        available = width - len(COLUMN_GAP) * (len(headers) - 1)
        longest_words = [
            max(len(word) for cell in column for word in cell.split()) for column in columns
        ]
        # Cut no word if the columns fit so; else cut the long ones, but not the headers.
        for minimum in (longest_words, [len(header) for header in headers]):
            widths = _fit(natural, minimum, available)
            if sum(widths) <= available:
                break
    lines = []
    for row in [[*headers], ["-" * size for size in widths], *rows]:
        cells = [_lines(cell, size) for cell, size in zip(row, widths, strict=True)]
        for parts in itertools.zip_longest(*cells, fillvalue=""):
            line = COLUMN_GAP.join(
                part.ljust(size) for part, size in zip(parts, widths, strict=True)
            )
            lines.append(line.rstrip())
    return "\n".join(lines)


def wrap_note(text: str, width: int) -> str:
    """A paragraph printed under a table, wrapped to *width* columns."""
    return textwrap.fill(text, width, break_on_hyphens=False)
