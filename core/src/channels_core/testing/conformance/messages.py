"""Conformance: bad input (names, oversized, non-dict and non-msgpack-safe messages) with
the right errors, and message values that round-trip without shared objects.
"""

from __future__ import annotations

import asyncio

import pytest

from ...exceptions import (
    InvalidChannelName,
    MessageError,
    MessageTooLarge,
)
from .base import ConformanceBase, fresh

BAD_CHANNEL_NAMES = [
    pytest.param("x" * 100, id="too-long"),
    pytest.param("has space", id="space"),
    pytest.param("slash/name", id="slash"),
    pytest.param("caf\u00e9", id="non-ascii"),
    pytest.param("two!bangs!here", id="two-bangs"),
    pytest.param("", id="empty"),
    pytest.param(42, id="int"),
    pytest.param(None, id="none"),
    pytest.param(b"bytes.name", id="bytes"),
]
BAD_GROUP_NAMES = [
    pytest.param("x" * 100, id="too-long"),
    pytest.param("with!bang", id="bang"),
    pytest.param("has space", id="space"),
    pytest.param(7, id="int"),
]


class MessageConformance(ConformanceBase):
    """Bad names and messages raise the right errors; values round-trip, unshared."""

    # Bad input -----------------------------------------------------------------------

    @pytest.mark.parametrize("name", BAD_CHANNEL_NAMES)
    async def test_invalid_channel_names_raise_invalid_channel_name(self, layer, name):
        group = fresh("group")
        calls = [
            lambda: layer.send(name, {"n": 1}),
            lambda: layer.receive(name),
            lambda: layer.group_add(group, name),
            lambda: layer.group_discard(group, name),
        ]
        for call in calls:
            # Caught by ``except TypeError`` too, as channels_redis raises it.
            with pytest.raises(TypeError) as raised:
                await asyncio.wait_for(call(), self.receive_timeout)
            assert isinstance(raised.value, InvalidChannelName)

    @pytest.mark.parametrize("name", BAD_GROUP_NAMES)
    async def test_invalid_group_names_raise_invalid_channel_name(self, layer, name):
        channel = fresh("member")
        calls = [
            lambda: layer.group_add(name, channel),
            lambda: layer.group_discard(name, channel),
            lambda: layer.group_send(name, {"n": 1}),
        ]
        for call in calls:
            with pytest.raises(InvalidChannelName):
                await call()

    async def test_oversized_message_raises_message_too_large(self, layer_factory):
        layer = await layer_factory(max_message_size=200)
        channel, group = fresh("big"), fresh("group")
        await layer.group_add(group, channel)
        await layer.send(channel, {"text": "x" * 100})
        with pytest.raises(MessageTooLarge, match="200"):
            await layer.send(channel, {"text": "x" * 300})
        with pytest.raises(MessageTooLarge):
            await layer.group_send(group, {"text": "x" * 300})
        assert (await layer.stats(channel)).pending == 1

    async def test_non_msgpack_safe_value_raises_message_error_naming_the_key(self, layer):
        channel, group = fresh("unsafe"), fresh("group")
        with pytest.raises(MessageError, match="when"):
            await layer.send(channel, {"payload": {"when": object()}})
        with pytest.raises(MessageError, match="tags"):
            await layer.group_send(group, {"tags": {"a", "b"}})
        assert (await layer.stats(channel)).pending == 0

    @pytest.mark.parametrize(
        "message",
        [pytest.param("text", id="str"), pytest.param(["a"], id="list"), None, 42],
    )
    async def test_non_dict_message_raises_message_error(self, layer, message):
        with pytest.raises(MessageError):
            await layer.send(fresh("nondict"), message)

    # Isolation and values ------------------------------------------------------------

    async def test_mutating_the_sent_dict_after_send_does_not_change_the_received_one(self, layer):
        channel = fresh("isolated")
        message = {"items": [1, 2], "meta": {"k": "v"}}
        await layer.send(channel, message)
        message["items"].append(3)
        message["meta"]["k"] = "changed"
        message["extra"] = True
        assert await self.receive(layer, channel) == {"items": [1, 2], "meta": {"k": "v"}}

    async def test_mutating_a_received_group_message_does_not_change_another_members(self, layer):
        group, first, second = fresh("group"), fresh("first"), fresh("second")
        await layer.group_add(group, first)
        await layer.group_add(group, second)
        await layer.group_send(group, {"items": [1]})
        received = await self.receive(layer, first)
        received["items"].append(2)
        assert await self.receive(layer, second) == {"items": [1]}

    async def test_message_values_round_trip(self, layer):
        channel = fresh("values")
        message = {
            "text": "h\u00e9llo \u2603",
            "bytes": b"\x00\xff",
            "int": 2**62,
            "negative": -5,
            "float": 1.5,
            "true": True,
            "none": None,
            "list": [1, "a", [b"b"]],
            "tuple": (1, 2),
            "nested": {"headers": [[b"host", b"example.com"]]},
        }
        await layer.send(channel, message)
        received = await self.receive(layer, channel)
        assert received == {**message, "tuple": [1, 2]}
        assert isinstance(received["bytes"], bytes)
        assert received["true"] is True
