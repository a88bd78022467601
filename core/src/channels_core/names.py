"""Channel and group names: validation and generation.

A name is ASCII ``[a-zA-Z0-9._-]``, shorter than 100 characters. A channel name may hold one
``!``: the part up to and including it names the process that owns the channel
(``websocket.send!a1b2``); such a channel is *process-specific*.
"""

from __future__ import annotations

import re
import secrets

from .exceptions import InvalidChannelName

MAX_NAME_LENGTH = 99

_CHANNEL_RE = re.compile(r"[a-zA-Z0-9._-]+(![a-zA-Z0-9._-]*)?\Z")
_GROUP_RE = re.compile(r"[a-zA-Z0-9._-]+\Z")

# Names seen valid are remembered, so the per-message check is one set lookup. The cache is
# bounded so that an endless stream of fresh reply channels cannot grow it without limit.
_valid_channels: set[str] = set()
_valid_groups: set[str] = set()
_CACHE_LIMIT = 10_000


def _describe(kind: str, name: object) -> str:
    if not isinstance(name, str):
        return f"{kind} name {name!r} is a {type(name).__name__}, not a str: pass a string."
    if not name:
        return f"{kind} name is empty: pass a non-empty name."
    if len(name) > MAX_NAME_LENGTH:
        return (
            f"{kind} name {name[:40]!r}... is {len(name)} characters long: "
            f"names must be shorter than {MAX_NAME_LENGTH + 1} characters."
        )
    allowed = "[a-zA-Z0-9._-]" + (" and one '!'" if kind == "Channel" else "")
    return f"{kind} name {name!r} has characters outside {allowed}: rename it."


def check_channel_name(name: str) -> str:
    """Return *name* if it is a valid channel name; raise :class:`InvalidChannelName`."""
    if type(name) is str and name in _valid_channels:
        return name
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_NAME_LENGTH
        or not _CHANNEL_RE.match(name)
    ):
        raise InvalidChannelName(_describe("Channel", name))
    if len(_valid_channels) >= _CACHE_LIMIT:
        _valid_channels.clear()
    _valid_channels.add(name)
    return name


def check_group_name(name: str) -> str:
    """Return *name* if it is a valid group name; raise :class:`InvalidChannelName`."""
    if type(name) is str and name in _valid_groups:
        return name
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_NAME_LENGTH
        or not _GROUP_RE.match(name)
    ):
        raise InvalidChannelName(_describe("Group", name))
    if len(_valid_groups) >= _CACHE_LIMIT:
        _valid_groups.clear()
    _valid_groups.add(name)
    return name


def is_process_specific(name: str) -> bool:
    """True when *name* is a process-specific channel (``prefix!suffix``)."""
    return "!" in name


def process_prefix(name: str) -> str:
    """The owning part of a process-specific name, up to and including ``!``."""
    return name[: name.index("!") + 1]


def check_process_prefix(prefix: str) -> str:
    """Return *prefix* if it is a valid process prefix (``specific.Ab12!``); else raise.

    Layers call it in ``receive_prefix()``.
    """
    check_channel_name(prefix)
    if not prefix.endswith("!"):
        raise InvalidChannelName(
            f"receive_prefix() takes a process prefix ending in '!', such as "
            f"'specific.Ab12!', not {prefix!r}: pass layer.process_prefix() or the part "
            "of a channel name up to and including its '!'."
        )
    return prefix


def random_suffix(length: int = 12) -> str:
    """A random string of ``[a-zA-Z0-9_-]`` for fresh channel names."""
    return secrets.token_urlsafe(length)[:length]


def new_process_prefix(base: str = "specific") -> str:
    """A fresh process prefix such as ``specific.Xa81kLq0!``."""
    return check_channel_name(f"{base}.{random_suffix()}!")
