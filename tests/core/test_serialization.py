"""Messages are msgpack-safe dicts; errors name the offending key."""

from __future__ import annotations

import pytest

from channels_core.exceptions import MessageError, MessageTooLarge
from channels_core.serialization import check_message, pack, unpack


def test_round_trip_keeps_every_safe_type():
    message = {
        "text": "h\u00e9llo",
        "bytes": b"\x00\xff",
        "int": -(2**63),
        "big": 2**64 - 1,
        "float": 1.5,
        "bool": True,
        "none": None,
        "list": [1, "two", [3]],
        "dict": {"nested": {"deep": b"x"}},
    }
    assert unpack(pack(message)) == message


def test_tuples_come_back_as_lists():
    assert unpack(pack({"pair": (1, 2)})) == {"pair": [1, 2]}


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        ({"when": object()}, r"message\['when'\] is an object"),
        ({"deep": {"set": {1, 2}}}, r"message\['deep'\]\['set'\] is a set"),
        ({"items": [1, 2, 3.0j]}, r"message\['items'\]\[2\] is a complex"),
        ({"huge": 2**64}, r"message\['huge'\] is an int"),
        ({"text": ["ok", "bad \ud800"]}, r"message\['text'\]\[1\] .* holds a lone surrogate"),
    ],
)
def test_unsafe_values_are_rejected_with_their_path(message, fragment):
    with pytest.raises(MessageError, match=fragment):
        pack(message)


def test_non_dict_and_non_str_keys_are_rejected():
    with pytest.raises(MessageError, match="must be a dict, not list"):
        check_message(["text"])
    with pytest.raises(MessageError, match="Message key 1 is an int"):
        check_message({1: "one"})


def test_size_limit_names_both_sizes():
    with pytest.raises(MessageTooLarge, match=r"over this layer's limit of 100 bytes"):
        pack({"blob": b"x" * 200}, max_size=100)
    assert len(pack({"blob": b"x" * 50}, max_size=100)) <= 100


def test_the_packer_recovers_after_an_error():
    with pytest.raises(MessageError):
        pack({"bad": object()})
    assert unpack(pack({"good": 1})) == {"good": 1}
