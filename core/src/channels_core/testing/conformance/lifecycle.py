"""Conformance: ``flush``, ``close`` and ``stats``."""

from __future__ import annotations

import asyncio

import pytest

from ...exceptions import LayerClosed
from .base import ConformanceBase, fresh


class LifecycleConformance(ConformanceBase):
    """``flush`` empties the layer, ``close`` ends it, ``stats`` counts what is in it."""

    # flush and close -----------------------------------------------------------------

    async def test_flush_drops_pending_messages_and_groups(self, layer):
        channel, group, member = fresh("flushed"), fresh("group"), fresh("member")
        await layer.send(channel, {"n": 1})
        await layer.group_add(group, member)
        await layer.flush()
        assert (await layer.stats()).pending == 0
        await layer.group_send(group, {"n": 2})
        await self.assert_nothing(layer, member)
        await layer.send(channel, {"n": 3})
        assert await self.receive(layer, channel) == {"n": 3}

    async def test_close_makes_waiting_receives_raise_layer_closed(self, layer):
        waiting = await self.started(layer.receive(fresh("waiting")))
        waiting_prefix = await self.started(layer.receive_prefix(layer.process_prefix()))
        await layer.close()
        for task in (waiting, waiting_prefix):
            with pytest.raises(LayerClosed):
                await asyncio.wait_for(task, self.receive_timeout)

    async def test_calls_after_close_raise_layer_closed(self, layer):
        channel, group = fresh("closed"), fresh("group")
        await layer.close()
        calls = [
            lambda: layer.send(channel, {"n": 1}),
            lambda: layer.receive(channel),
            lambda: layer.receive_prefix(layer.process_prefix()),
            lambda: layer.group_add(group, channel),
            lambda: layer.group_send(group, {"n": 1}),
        ]
        for call in calls:
            with pytest.raises(LayerClosed):
                await asyncio.wait_for(call(), self.receive_timeout)

    # Statistics ----------------------------------------------------------------------

    async def test_stats_of_an_empty_layer(self, layer):
        stats = await layer.stats()
        assert (stats.pending, stats.oldest_age, stats.full_count) == (0, None, 0)
        per_channel = await layer.stats(fresh("unused"))
        assert (per_channel.pending, per_channel.oldest_age) == (0, None)

    async def test_stats_count_pending_messages_and_oldest_age(self, layer):
        busy, quiet = fresh("busy"), fresh("quiet")
        await layer.send(busy, {"n": 1})
        await asyncio.sleep(0.05)
        await layer.send(busy, {"n": 2})
        await layer.send(quiet, {"n": 3})
        overall, of_busy = await layer.stats(), await layer.stats(busy)
        assert overall.pending == 3
        assert of_busy.pending == 2
        assert of_busy.oldest_age >= 0.05
        assert overall.oldest_age >= 0.05
        assert (await layer.stats(quiet)).oldest_age < of_busy.oldest_age
        await self.receive(layer, busy)
        assert (await layer.stats(busy)).pending == 1
