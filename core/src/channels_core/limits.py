"""Settings that bound what a process holds: dicts of byte counts and seconds.

``CHANNELS["WRITE_BUFFER"]`` (:class:`WriteLimits`, used by :mod:`channels_core.flow`) and
``CHANNELS["LAYER_OUTAGE"]`` (:class:`OutageLimits`, used by :mod:`channels_core.outage`),
checked by one function, :func:`check_number_dict`, with the same sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

from .exceptions import ImproperlyConfigured

MIB = 1 << 20
SETTING_OUTAGE = "CHANNELS['LAYER_OUTAGE']"

#: How :func:`check_number_dict` checks one key: ``"bytes"`` (a whole number more than
#: zero), ``"bytes or 0"`` (zero or more) or ``"seconds"`` (a number more than zero).
NUMBER_KINDS = {
    "bytes": "a whole number of bytes more than zero, such as 1048576",
    "bytes or 0": "a whole number of bytes, zero or more, such as 16777216",
    "seconds": "a number of seconds more than zero, such as 10",
}


def check_number_dict(
    key: str, raw: object, kinds: dict[str, str], example: str, notes: dict[str, str] | None = None
) -> dict[str, int | float]:
    """Check a ``CHANNELS`` key that is a dict of some numbers (``WRITE_BUFFER``,
    ``LAYER_OUTAGE``): the keys given, each by its kind (:data:`NUMBER_KINDS`); seconds come
    back as floats. *notes* adds a sentence to a key's error. None is ``{}``."""
    notes = notes or {}
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"{key} is {raw!r}; it must be a dict such as {example}.")
    unknown = sorted(set(raw) - set(kinds))
    if unknown:
        names = ", ".join(repr(name) for name in kinds)
        raise ImproperlyConfigured(f"{key} has the unknown key(s) {unknown}; the keys are {names}.")
    values: dict[str, int | float] = {}
    for name, value in raw.items():
        kind = kinds[name]
        if kind == "seconds":
            valid = type(value) in (int, float) and value > 0
        else:
            valid = type(value) is int and value >= (0 if kind == "bytes or 0" else 1)
        if not valid:
            note = f" ({notes[name]})" if name in notes else ""
            raise ImproperlyConfigured(
                f"{key}['{name}'] is {value!r}; it must be {NUMBER_KINDS[kind]}{note}."
            )
        values[name] = float(value) if kind == "seconds" else value
    return values


@dataclass(frozen=True)
class WriteLimits:
    """``CHANNELS["WRITE_BUFFER"]``: the bounds of every connection's outgoing buffer.

    :param high_water: bytes a connection may hold unsent before it is paused (sends wait,
        layer deliveries are dropped).
    :param limit: bytes past which a connection is closed at once (at least
        ``high_water``).
    :param timeout: seconds a connection may stay paused before it is closed.
    """

    high_water: int = MIB
    limit: int = 4 * MIB
    timeout: float = 10.0

    @classmethod
    def from_setting(cls, raw: object) -> WriteLimits:
        """Check ``CHANNELS["WRITE_BUFFER"]`` (a dict of some of the three keys)."""
        key = "CHANNELS['WRITE_BUFFER']"
        values = check_number_dict(
            key,
            raw,
            {"high_water": "bytes", "limit": "bytes", "timeout": "seconds"},
            "{'high_water': 1048576, 'limit': 4194304, 'timeout': 10}",
        )
        limits = cls(**values)
        if limits.limit < limits.high_water:
            raise ImproperlyConfigured(
                f"{key}['limit'] is {limits.limit}, below 'high_water' ({limits.high_water}); "
                "the hard limit must be at least the high-water mark."
            )
        return limits


@dataclass(frozen=True)
class OutageLimits:
    """``CHANNELS["LAYER_OUTAGE"]``: how long and how much a process holds through an outage.

    :param timeout: seconds an outage may last before new sends are refused (what is held
        stays held, and is sent when the layer is back).
    :param buffer: bytes of held messages (serialized) the process keeps at most; a send
        past it is refused. 0 holds nothing: every send is refused during an outage.
    """

    timeout: float = 10.0
    buffer: int = 16 * MIB

    @classmethod
    def from_setting(cls, raw: object) -> OutageLimits:
        """Check ``CHANNELS["LAYER_OUTAGE"]`` (a dict of some of its two keys)."""
        return cls(
            **check_number_dict(
                SETTING_OUTAGE,
                raw,
                {"timeout": "seconds", "buffer": "bytes or 0"},
                "{'timeout': 10, 'buffer': 16777216}",
                {"buffer": "0 holds nothing: sends are refused during an outage"},
            )
        )
