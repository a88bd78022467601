"""Channel and group name validation."""

from __future__ import annotations

import pytest

from channels_core.exceptions import InvalidChannelName
from channels_core.names import (
    check_channel_name,
    check_group_name,
    is_process_specific,
    new_process_prefix,
    process_prefix,
)


@pytest.mark.parametrize(
    "name", ["http.request", "websocket.send!a1b2", "a", "x" * 99, "A-b_c.9", "specific.abc!"]
)
def test_valid_channel_names_pass(name):
    assert check_channel_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("x" * 100, "100 characters long"),
        ("chat room", "characters outside"),
        ("caf\u00e9", "characters outside"),
        ("a!b!c", "characters outside"),
        ("!abc", "characters outside"),
        (b"bytes", "is a bytes"),
        (None, "is a NoneType"),
        (["x"], "is a list"),
    ],
)
def test_invalid_channel_names_raise_a_sentence(name, fragment):
    with pytest.raises(InvalidChannelName, match=fragment):
        check_channel_name(name)


@pytest.mark.parametrize("caught", [TypeError, ValueError])
@pytest.mark.parametrize(
    ("check", "name"), [(check_channel_name, "a b"), (check_group_name, "a!b")]
)
def test_an_invalid_name_is_caught_as_a_type_error_and_as_a_value_error(caught, check, name):
    # channels_redis and Channels 2-4 raise TypeError for a bad name, earlier versions of this
    # project ValueError: code written for either catches it.
    with pytest.raises(caught) as raised:
        check(name)
    assert isinstance(raised.value, InvalidChannelName)


def test_group_names_reject_the_process_marker():
    assert check_group_name("chat-lobby") == "chat-lobby"
    with pytest.raises(InvalidChannelName, match="Group name 'a!b'"):
        check_group_name("a!b")


def test_process_specific_parts():
    prefix = new_process_prefix("websocket.send")
    assert prefix.startswith("websocket.send.")
    assert prefix.endswith("!")
    name = prefix + "conn1"
    assert is_process_specific(name)
    assert process_prefix(name) == prefix
    assert not is_process_specific("http.request")
    assert new_process_prefix() != new_process_prefix()
