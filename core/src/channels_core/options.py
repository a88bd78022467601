"""Protocol options: declared once, checked by the kernel wherever their values come from.

An :class:`Option` says what a value must be (its type, bounds, choices, whether None is
allowed, a validator for the rest) and the sentence that tells the user how to fix a bad one.
:func:`check_options` checks ``CHANNELS["OPTIONS"]`` when the registry is built and the
command line's values when the server starts; :func:`resolve_options` merges defaults,
settings and command line for the server. A plugin never re-checks its own options.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured, PluginError

if TYPE_CHECKING:
    from .protocols import ProtocolSpec
    from .settings import ChannelsSettings


def boolean(value: str) -> bool:
    """An option's boolean from the command line: ``true``/``false``, ``yes``/``no``,
    ``on``/``off``, ``1``/``0`` (any case). The converter of every ``type=bool`` option."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean; use true or false (on or off)")


def is_positive_number(value: Any, *, integer: bool = False, zero: bool = False) -> bool:
    """Whether *value* is a number above zero (or zero, with ``zero=True``): an ``int`` or a
    ``float``, never a ``bool`` (``True`` is not 1 second); with ``integer=True``, an ``int``
    only. Options say the same with ``Option(type=float, above=0)``."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return False
    return value >= 0 if zero else value > 0


# The value types an option may declare, each with the converter of its command-line flag.
# ``object`` takes any value (the validator decides) and a string from the command line.
CONVERTERS: dict[type, Callable[[str], Any]] = {
    str: str,
    int: int,
    float: float,
    bool: boolean,
    object: str,
}
_TYPE_WORDS = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "True or False",
    object: "a value",
}


@dataclass(frozen=True)
class Option:
    """One option of a protocol: a key of ``CHANNELS["OPTIONS"][protocol]`` and a CLI flag.

    ``name`` is the settings key (lower case, ``max_datagram_size``); ``flags`` are the
    ``channels serve`` flags (``("--udp-max-datagram-size",)``); ``multiple`` makes the flag
    repeatable and the value a list (or tuple) whose every item is checked.

    What a value must be:

    - ``type``: ``str``, ``int``, ``float`` (an ``int`` is accepted too) or ``bool``; a
      ``bool`` is never a number. ``object`` accepts any value and leaves it to ``validator``.
    - ``minimum`` and ``maximum`` (inclusive) and ``above`` (exclusive: ``above=0`` is
      "positive") bound a number.
    - ``choices``: the values allowed.
    - ``nullable``: whether None is allowed; by default, when the default is None.
    - ``validator(value)``: what the rest cannot say (an address, a path's shape); it raises
      :class:`ValueError` to refuse the value, and its message, when it has one, is said
      instead of ``fix``.
    - ``fix``: the sentence that tells the user what to write, such as "set it to a positive
      number of seconds, such as 10."; by default one is made from the declaration.

    ``convert`` turns the command line's string into a value; by default the type's
    converter (:func:`boolean` for ``bool``). The default must pass the checks.
    """

    name: str
    help: str
    default: Any = None
    type: type = str
    flags: tuple[str, ...] = ()
    multiple: bool = False
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[Any, ...] = ()
    nullable: bool | None = None
    validator: Callable[[Any], object] | None = None
    fix: str = ""
    convert: Callable[[str], Any] | None = None

    def __post_init__(self) -> None:
        if self.type is boolean:
            # Declarations written before types were checked named the converter instead.
            object.__setattr__(self, "type", bool)
        if self.type not in CONVERTERS:
            raise PluginError(
                f"The option {self.name!r} has type={self.type!r}: use str, int, float, bool "
                "or object, and give a command-line converter as convert= if it needs one."
            )
        bounded = (self.minimum, self.maximum, self.above) != (None, None, None)
        if bounded and self.type not in (int, float):
            raise PluginError(
                f"The option {self.name!r} has bounds but type={self.type.__name__}: only an "
                "int or float option takes minimum, maximum or above."
            )
        # Fill in what the declaration leaves to its defaults, so the fields say what holds.
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.nullable is None:
            object.__setattr__(self, "nullable", self.default is None)
        if self.convert is None:
            object.__setattr__(self, "convert", CONVERTERS[self.type])
        if not self.fix:
            object.__setattr__(self, "fix", self._default_fix())
        reason = self.problem(self.default)
        if reason is not None:
            raise PluginError(
                f"The option {self.name!r} has the default {self.default!r}, which its own "
                f"declaration refuses ({reason.rstrip('.')}); change the default or the checks."
            )

    def _default_fix(self) -> str:
        if self.choices:
            what = "one of " + ", ".join(map(repr, self.choices))
        elif self.minimum is not None and self.maximum is not None:
            what = f"{_TYPE_WORDS[self.type]} from {self.minimum:g} to {self.maximum:g}"
        else:
            bounds = []
            if self.above is not None:
                bounds.append(f"above {self.above:g}")
            if self.minimum is not None:
                bounds.append(f"of {self.minimum:g} or more")
            if self.maximum is not None:
                bounds.append(f"of at most {self.maximum:g}")
            what = " ".join([_TYPE_WORDS[self.type], " and ".join(bounds)]).strip()
        if self.multiple:
            what = f"set it to a list of values, each {what}"
        else:
            what = f"use {what}" if self.choices else f"set it to {what}"
        return what + (", or None." if self.nullable else ".")

    def problem(self, value: Any) -> str | None:
        """What is wrong with *value* and how to fix it, as a sentence; None when it is good."""
        if value is None:
            return None if self.nullable else self.fix
        if not self.multiple:
            return self._item_problem(value)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return self.fix
        for item in value:
            reason = self._item_problem(item)
            if reason is not None:
                return reason
        return None

    def _item_problem(self, value: Any) -> str | None:
        if not self._has_type(value) or not self._in_bounds(value):
            return self.fix
        if self.choices and value not in self.choices:
            return self.fix
        if self.validator is not None:
            try:
                self.validator(value)
            except ValueError as error:
                return str(error) or self.fix
        return None

    def _has_type(self, value: Any) -> bool:
        if self.type is object:
            return True
        if isinstance(value, bool):
            return self.type is bool
        if self.type is float:
            return isinstance(value, int) or (isinstance(value, float) and not math.isnan(value))
        return isinstance(value, self.type)

    def _in_bounds(self, value: Any) -> bool:
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.above is None or value > self.above)
        )

    def check(self, value: Any, where: str) -> None:
        """Raise :class:`ImproperlyConfigured` when *value* is bad: one sentence naming
        *where* it came from (a setting, a flag), the value, and the fix."""
        reason = self.problem(value)
        if reason is not None:
            ending = "" if reason.endswith(".") else "."
            raise ImproperlyConfigured(f"{where} is {value!r}; {reason}{ending}")


def setting_name(protocol: str, name: str) -> str:
    """Where an option is set in the settings: ``CHANNELS['OPTIONS']['udp']['rate']``."""
    return f"CHANNELS['OPTIONS'][{protocol!r}][{name!r}]"


def flag_name(protocol: str, option: Option) -> str:
    """Where an option is given on the command line: its flag (the long one) and what it
    sets, ``--udp-rate: the option udp['rate']``."""
    long_flags = [flag for flag in option.flags if flag.startswith("--")]
    flag = (long_flags or [*option.flags, f"--option {protocol}.{option.name}"])[0]
    return f"{flag}: the option {protocol}[{option.name!r}]"


def check_options(
    protocol: str,
    declared: Iterable[Option],
    given: Mapping[str, Any],
    command_line: bool = False,
) -> None:
    """Check the option values *given* for *protocol* against its *declared* options.

    *command_line* says they come from ``channels serve`` flags rather than
    ``CHANNELS["OPTIONS"]``, which the error sentences name. Raises
    :class:`ImproperlyConfigured` for an unknown key or a bad value.
    """
    options = {option.name: option for option in declared}
    for key, value in given.items():
        if key not in options:
            where = (
                f"The command-line options of {protocol!r}"
                if command_line
                else f"CHANNELS['OPTIONS'][{protocol!r}]"
            )
            raise ImproperlyConfigured(
                f"{where} has the unknown option {key!r}; the protocol {protocol!r} takes "
                f"{sorted(options) or 'no options'}."
            )
        option = options[key]
        option.check(
            value, flag_name(protocol, option) if command_line else setting_name(protocol, key)
        )


def resolve_options(
    protocols: Iterable[ProtocolSpec],
    settings: ChannelsSettings,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each protocol's options: defaults, then ``CHANNELS["OPTIONS"]``, then *overrides*.

    *overrides* come from the command line, already converted. Every value is checked
    against its declaration; an unknown key, in the settings or in *overrides*, and
    overrides for a protocol that is not enabled are errors.
    """
    protocols = list(protocols)
    overrides = overrides or {}
    enabled = {spec.name for spec in protocols}
    for name in overrides:
        if name not in enabled:
            raise ImproperlyConfigured(
                f"Options were given for the protocol {name!r}, which is not enabled (enabled: "
                f"{sorted(enabled)}); enable it with --protocol {name} or CHANNELS['PROTOCOLS']."
            )
    resolved = {}
    for spec in protocols:
        values = spec.option_defaults()
        for given, command_line in (
            (settings.protocol_options(spec.name), False),
            (overrides.get(spec.name, {}), True),
        ):
            check_options(spec.name, spec.options, given, command_line=command_line)
            values.update(given)
        resolved[spec.name] = values
    return resolved
