"""Messages on the wire: msgpack, with errors that name the offending key.

A message is a dict with str keys whose values are msgpack-safe: str, bytes, int, float,
bool, None, and lists, tuples and dicts of those. Tuples come back as lists.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .exceptions import MessageError, MessageTooLarge

_SAFE_SCALARS = (str, bytes, int, float, bool, type(None))

_packer = msgpack.Packer(use_bin_type=True, autoreset=True)


def _find_unsafe(value: Any, path: str) -> tuple[str, object] | None:
    """The dotted path and value of the first thing msgpack cannot carry, or None."""
    if isinstance(value, _SAFE_SCALARS):
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            return path, value
        if isinstance(value, str) and not _encodes(value):
            return path, value
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unsafe(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, bytes, int)):
                return f"{path}[{key!r}] (its key)", key
            found = _find_unsafe(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    return path, value


def _encodes(text: str) -> bool:
    """Whether *text* is valid UTF-8 once encoded (a lone surrogate is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def check_message(message: object) -> dict:
    """Return *message* if it is a dict of msgpack-safe values; raise :class:`MessageError`."""
    if not isinstance(message, dict):
        raise MessageError(
            f"A message must be a dict, not {type(message).__name__} ({message!r:.60}): "
            "wrap the value in a dict such as {'text': ...}."
        )
    for key in message:
        if not isinstance(key, str):
            raise MessageError(
                f"Message key {key!r} is {_a(type(key).__name__)}: message keys must be str."
            )
    found = _find_unsafe(message, "message")
    if found is not None:
        path, value = found
        if isinstance(value, str):
            raise MessageError(
                f"{path} ({value!r:.60}) holds a lone surrogate, which UTF-8 and so a channel "
                "layer cannot carry: decode the text it came from with errors='replace', or "
                "send it as bytes."
            )
        raise MessageError(
            f"{path} is {_a(type(value).__name__)} ({value!r:.60}), which a channel layer cannot "
            "carry: use str, bytes, int, float, bool, None, list or dict."
        )
    return message


def pack(message: dict, max_size: int | None = None) -> bytes:
    """Serialize *message*; raise :class:`MessageError` or :class:`MessageTooLarge`."""
    if type(message) is not dict:
        check_message(message)
    try:
        data = _packer.pack(message)
    except (TypeError, ValueError, OverflowError):
        _packer.reset()
        check_message(message)
        raise
    if max_size is not None and len(data) > max_size:
        raise MessageTooLarge(
            f"The message is {len(data)} bytes once serialized, over this layer's limit of "
            f"{max_size} bytes: send less per message, or raise the layer's max_message_size."
        )
    return data


def unpack(data: bytes) -> dict:
    """Deserialize a message written by :func:`pack`."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
