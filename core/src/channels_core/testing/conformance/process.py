"""Conformance: process-specific channels, ``new_channel`` and ``receive_prefix``."""

from __future__ import annotations

import asyncio
import re

import pytest

from ...exceptions import ForeignProcessChannel, InvalidChannelName
from .base import ConformanceBase, fresh


class ProcessChannelConformance(ConformanceBase):
    """Process-specific channels, ``new_channel`` and ``receive_prefix``."""

    async def test_new_channel_names_are_fresh_valid_and_under_the_process_prefix(self, layer):
        prefix = layer.process_prefix("specific")
        assert prefix.startswith("specific.")
        assert prefix.endswith("!")
        names = {await layer.new_channel() for _ in range(100)}
        assert len(names) == 100
        for name in names:
            assert name.startswith(prefix)
            assert len(name) < 100

    async def test_new_channel_takes_a_prefix(self, layer):
        name = await layer.new_channel("websocket.send")
        assert name.startswith(layer.process_prefix("websocket.send"))
        assert name.startswith("websocket.send.")

    async def test_receive_on_a_process_specific_channel_gets_only_its_messages(self, layer):
        first, second = await layer.new_channel(), await layer.new_channel()
        await layer.send(first, {"to": "first"})
        await layer.send(second, {"to": "second"})
        assert await self.receive(layer, second) == {"to": "second"}
        await self.assert_nothing(layer, second)
        assert await self.receive(layer, first) == {"to": "first"}

    async def test_receive_prefix_returns_every_channel_in_per_channel_order(self, layer):
        prefix = layer.process_prefix()
        channels = [await layer.new_channel() for _ in range(200)]
        for n in range(3):
            for channel in channels:
                await layer.send(channel, {"n": n})
        seen: dict[str, list[int]] = {channel: [] for channel in channels}
        for _ in range(600):
            channel, message = await self.receive_prefix(layer, prefix)
            seen[channel].append(message["n"])
        assert all(ns == [0, 1, 2] for ns in seen.values())
        assert (await layer.stats()).pending == 0

    async def test_receive_prefix_waits_for_a_later_send(self, layer):
        prefix = layer.process_prefix()
        task = await self.started(layer.receive_prefix(prefix))
        channel = await layer.new_channel()
        await layer.send(channel, {"n": 1})
        assert await asyncio.wait_for(task, self.receive_timeout) == (channel, {"n": 1})

    async def test_receive_prefix_ignores_other_prefixes_and_plain_channels(self, layer):
        prefix = layer.process_prefix()
        await layer.send(fresh("plain"), {"n": 1})
        await layer.send(f"{fresh('other')}!abc", {"n": 2})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive_prefix(prefix), self.absent_timeout)

    async def test_receive_and_receive_prefix_share_one_channel_in_order(self, layer):
        channel = await layer.new_channel()
        for n in range(3):
            await layer.send(channel, {"n": n})
        assert await self.receive(layer, channel) == {"n": 0}
        assert await self.receive_prefix(layer, layer.process_prefix()) == (channel, {"n": 1})
        assert await self.receive(layer, channel) == {"n": 2}

    @pytest.mark.parametrize("prefix", ["specific.abc", "has space!", 5])
    async def test_receive_prefix_rejects_a_prefix_that_is_not_one(self, layer, prefix):
        with pytest.raises(InvalidChannelName):
            await asyncio.wait_for(layer.receive_prefix(prefix), self.receive_timeout)

    async def test_receive_on_another_layers_process_channel_raises_at_once(self, layer_factory):
        # Another process's channels, made here by another layer instance: their messages
        # never reach this one, so a receive raises at once instead of waiting forever.
        here, there = await layer_factory(), await layer_factory()
        own = await here.new_channel()
        foreign = await there.new_channel()
        prefix = there.process_prefix()
        await there.send(foreign, {"n": 1})
        with pytest.raises(ForeignProcessChannel, match=re.escape(prefix)) as raised:
            await asyncio.wait_for(here.receive(foreign), self.receive_timeout)
        assert (raised.value.channel, raised.value.prefix) == (foreign, prefix)
        assert repr(foreign) in str(raised.value)
        with pytest.raises(ForeignProcessChannel):
            await asyncio.wait_for(here.receive_prefix(prefix), self.receive_timeout)
        with pytest.raises(ForeignProcessChannel, match=re.escape("'specific.elsewhere!'")):
            await asyncio.wait_for(here.receive("specific.elsewhere!x"), self.receive_timeout)
        # An InvalidChannelName (so also a TypeError and a ValueError).
        assert isinstance(raised.value, InvalidChannelName)
        # The owner still receives it; the refusing layer's own channels still work.
        assert await self.receive(there, foreign) == {"n": 1}
        await here.send(own, {"n": 2})
        assert await self.receive(here, own) == {"n": 2}
