"""Group history and presence: the values and the configuration every layer shares.

A layer keeps a group's history when its name matches a glob of the layer's ``history``
option (``CONFIG: {"history": {"chat-*": {"size": 100, "ttl": 300}}}``): each message sent to
such a group gets a :class:`Position` (the store's epoch and an offset growing by one per
message), and :meth:`~channels_core.layers.BaseChannelLayer.group_history` returns what came
after a position as a :class:`History`. The epoch is made when the store is (a layer's start
for ``memory``; the first send after the group's history was lost for a server-backed
layer), so a position from before a flush or a restart of the store is recognised as such and
the history says it is not complete, instead of replaying the wrong range.

Presence (``group_add(group, channel, presence=info)``) keeps a small msgpack-safe dict per
member; a process that stops renewing its members (killed) loses them after the layer's
``presence_timeout``.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .exceptions import ImproperlyConfigured

#: How long (seconds) the members of a process that stopped renewing them stay present.
DEFAULT_PRESENCE_TIMEOUT = 30.0


class Position(NamedTuple):
    """Where a message stands in its group's history: the store's ``epoch`` and the
    message's ``offset`` (1 for the first message of an epoch). msgpack carries it as a
    two-item list; :meth:`of` takes that back. Positions of one epoch compare by offset."""

    epoch: str
    offset: int

    @classmethod
    def of(cls, value: Any) -> Position | None:
        """*value* (a Position, a ``[epoch, offset]`` list or tuple, or None) as a Position.

        Raises :class:`TypeError` (a :class:`ValueError` too) naming what a position is.
        """
        if value is None or isinstance(value, Position):
            return value
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], int)
            and not isinstance(value[1], bool)
            and value[1] >= 0
        ):
            return cls(value[0], value[1])
        raise InvalidPosition(
            f"{value!r} is not a group history position: give the position a send returned "
            "(an [epoch, offset] pair, such as ['3f9c2a1b7d4e', 42]) or None for everything."
        )


class InvalidPosition(TypeError, ValueError):
    """Not a :class:`Position`: both a TypeError and a ValueError, for code catching either."""


@dataclass(frozen=True)
class History:
    """What :meth:`~channels_core.layers.BaseChannelLayer.group_history` returns.

    ``messages`` are ``(position, content)`` pairs, oldest first, each after the position
    asked for. ``complete`` is False when some of what came after that position is no longer
    kept (trimmed by size or age, or lost with the store: then the epoch changed), so that
    the caller knows to start over instead of trusting the gap-free look of ``messages``.
    ``position`` is the group's latest position (None before its first message).
    """

    messages: list[tuple[Position, dict]] = field(default_factory=list)
    complete: bool = True
    position: Position | None = None


def new_epoch() -> str:
    """A fresh epoch: 12 random hex digits."""
    return os.urandom(6).hex()


@dataclass(frozen=True)
class Retention:
    """How much history one group keeps: at most ``size`` messages (None: no bound by
    count) and none older than ``ttl`` seconds (None: no bound by age)."""

    size: int | None
    ttl: float | None

    @property
    def ttl_ms(self) -> int | None:
        return None if self.ttl is None else math.ceil(self.ttl * 1000)


class HistoryPolicy:
    """The ``history`` option of a layer: ``{glob: {"size": N, "ttl": seconds}}``; the first
    glob (in the order given) that matches a group's name decides its :class:`Retention`."""

    def __init__(self, config: Any = None) -> None:
        self.rules: list[tuple[re.Pattern, Retention]] = []
        if config is None:
            return
        if not isinstance(config, dict):
            raise ImproperlyConfigured(
                f"Layer option 'history' is {config!r}; give a dict of group-name globs to "
                "{'size': N, 'ttl': seconds}, such as {'chat-*': {'size': 100, 'ttl': 300}}."
            )
        for glob, rule in config.items():
            if not isinstance(glob, str) or not glob:
                raise ImproperlyConfigured(
                    f"Layer option 'history' has the key {glob!r}; its keys are group-name "
                    "globs such as 'chat-*'."
                )
            if not isinstance(rule, dict) or not rule or set(rule) - {"size", "ttl"}:
                raise ImproperlyConfigured(
                    f"Layer option 'history' gives {glob!r} {rule!r}; give it 'size' (most "
                    "messages kept), 'ttl' (seconds kept), or both, such as "
                    "{'size': 100, 'ttl': 300}."
                )
            size, ttl = rule.get("size"), rule.get("ttl")
            if size is not None and (
                isinstance(size, bool) or not isinstance(size, int) or size < 1
            ):
                raise ImproperlyConfigured(
                    f"Layer option 'history' gives {glob!r} size={size!r}; it must be a "
                    "whole number of messages of 1 or more."
                )
            if ttl is not None and (
                isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0
            ):
                raise ImproperlyConfigured(
                    f"Layer option 'history' gives {glob!r} ttl={ttl!r}; it must be a "
                    "positive number of seconds."
                )
            self.rules.append((re.compile(fnmatch.translate(glob)), Retention(size, ttl)))
        self._cache: dict[str, Retention | None] = {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def for_group(self, group: str) -> Retention | None:
        """The retention of *group*, or None when it keeps no history."""
        if not self.rules:
            return None
        try:
            return self._cache[group]
        except KeyError:
            pass
        found = next((rule for pattern, rule in self.rules if pattern.match(group)), None)
        if len(self._cache) < 10_000:
            self._cache[group] = found
        return found


def presence_timeout(value: Any) -> float:
    """The ``presence_timeout`` layer option, checked."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(
            f"Layer option 'presence_timeout' is {value!r}; it must be a positive number of "
            "seconds (how long a stopped process's members stay present), such as 30."
        )
    return float(value)


def check_presence_info(info: Any) -> dict:
    """*info* if it is a dict (msgpack-safety is the layer's serializer's to check)."""
    if not isinstance(info, dict):
        raise TypeError(
            f"presence info must be a dict, such as {{'user': 42, 'name': 'Ada'}}, not "
            f"{type(info).__name__}: {info!r:.60}"
        )
    return info
