"""Conformance: message expiry, channel capacity (``capacity`` and ``channel_capacity``),
and bad layer options.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from ...exceptions import (
    ChannelFull,
    ImproperlyConfigured,
)
from .base import ConformanceBase, fresh


class CapacityConformance(ConformanceBase):
    """Expiry, capacity with ``ChannelFull`` and its count, and option checking."""

    # Expiry --------------------------------------------------------------------------

    async def test_message_older_than_expiry_is_never_delivered(self, layer_factory):
        layer = await layer_factory(expiry=self.short_expiry)
        channel = fresh("expiry")
        await layer.send(channel, {"n": 1})
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        await self.assert_nothing(layer, channel)
        assert (await layer.stats(channel)).pending == 0

    async def test_message_sent_after_an_expired_one_is_delivered(self, layer_factory):
        layer = await layer_factory(expiry=self.short_expiry)
        channel = fresh("expiry")
        await layer.send(channel, {"n": 1})
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        await layer.send(channel, {"n": 2})
        assert await self.receive(layer, channel) == {"n": 2}
        await self.assert_nothing(layer, channel)

    async def test_expired_messages_do_not_reach_receive_prefix(self, layer_factory):
        layer = await layer_factory(expiry=self.short_expiry)
        old, new = await layer.new_channel(), await layer.new_channel()
        await layer.send(old, {"n": 1})
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        await layer.send(new, {"n": 2})
        assert await self.receive_prefix(layer, layer.process_prefix()) == (new, {"n": 2})

    # Capacity ------------------------------------------------------------------------

    async def test_send_beyond_capacity_raises_channel_full_naming_channel_and_capacity(
        self, layer_factory
    ):
        layer = await layer_factory(capacity=3)
        channel = fresh("full")
        for n in range(3):
            await layer.send(channel, {"n": n})
        with pytest.raises(ChannelFull) as raised:
            await layer.send(channel, {"n": 3})
        assert channel in str(raised.value)
        assert "3" in str(raised.value)

    async def test_refused_sends_are_counted_globally_and_per_channel(self, layer_factory):
        layer = await layer_factory(capacity=1)
        channel, other = fresh("full"), fresh("other")
        await layer.send(channel, {"n": 0})
        for _ in range(2):
            with pytest.raises(ChannelFull):
                await layer.send(channel, {"n": 1})
        assert (await layer.stats(channel)).full_count == 2
        assert (await layer.stats(other)).full_count == 0
        assert (await layer.stats()).full_count == 2

    async def test_receiving_frees_capacity_and_keeps_order(self, layer_factory):
        layer = await layer_factory(capacity=2)
        channel = fresh("free")
        await layer.send(channel, {"n": 0})
        await layer.send(channel, {"n": 1})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"n": 2})
        assert await self.receive(layer, channel) == {"n": 0}
        await layer.send(channel, {"n": 2})
        assert [(await self.receive(layer, channel))["n"] for _ in range(2)] == [1, 2]

    async def test_capacity_is_per_channel(self, layer_factory):
        layer = await layer_factory(capacity=1)
        first, second = fresh("one"), fresh("two")
        await layer.send(first, {"n": 1})
        await layer.send(second, {"n": 2})
        assert await self.receive(layer, second) == {"n": 2}

    async def test_channel_capacity_glob_pattern_sets_capacity_of_matching_channels(
        self, layer_factory
    ):
        layer = await layer_factory(capacity=5, channel_capacity={"tight.*": 1})
        tight, loose = fresh("tight"), fresh("loose")
        await layer.send(tight, {"n": 0})
        with pytest.raises(ChannelFull, match=re.escape(tight)):
            await layer.send(tight, {"n": 1})
        for n in range(5):
            await layer.send(loose, {"n": n})
        with pytest.raises(ChannelFull):
            await layer.send(loose, {"n": 5})

    async def test_channel_capacity_regex_pattern_sets_capacity(self, layer_factory):
        layer = await layer_factory(
            capacity=1, channel_capacity={re.compile(r"^roomy\.[a-zA-Z0-9_]+$"): 3}
        )
        roomy = fresh("roomy")
        for n in range(3):
            await layer.send(roomy, {"n": n})
        with pytest.raises(ChannelFull):
            await layer.send(roomy, {"n": 3})

    async def test_channel_capacity_first_matching_pattern_wins(self, layer_factory):
        layer = await layer_factory(
            capacity=10, channel_capacity={"reply.*": 2, "reply.special*": 5}
        )
        channel = fresh("reply.special")
        await layer.send(channel, {"n": 0})
        await layer.send(channel, {"n": 1})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"n": 2})

    async def test_channel_capacity_applies_to_process_specific_channels(self, layer_factory):
        layer = await layer_factory(capacity=10, channel_capacity={"http.response.*!*": 1})
        channel = await layer.new_channel("http.response")
        await layer.send(channel, {"n": 0})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"n": 1})
        await layer.send(await layer.new_channel(), {"n": 0})

    @pytest.mark.parametrize(
        "config",
        [
            pytest.param({"capacity": 0}, id="capacity-0"),
            pytest.param({"expiry": -1}, id="negative-expiry"),
            pytest.param({"group_expiry": "soon"}, id="group-expiry-str"),
            pytest.param({"channel_capacity": {"a.*": 0}}, id="pattern-capacity-0"),
            pytest.param({"channel_capacity": ["a.*"]}, id="channel-capacity-list"),
        ],
    )
    async def test_bad_options_raise_improperly_configured(self, layer_factory, config):
        with pytest.raises(ImproperlyConfigured):
            await layer_factory(**config)
