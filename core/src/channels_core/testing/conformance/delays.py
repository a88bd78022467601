"""Conformance: delayed messages (``delay_add``, ``delay_deliver``: the ``delay`` extension;
a layer without it skips these tests, saying so)."""

from __future__ import annotations

import asyncio

import pytest

from ...exceptions import InvalidChannelName, MessageError
from ...layers import DELAY_RETRY_INTERVAL
from .base import ConformanceBase, fresh
from .history import needs


class DelayConformance(ConformanceBase):
    """Kept until due, delivered once and in due order, retried on a full channel."""

    async def test_only_due_messages_are_delivered(self, layer):
        needs(layer, "delay")
        channel = fresh("delayed")
        await layer.delay_add(channel, {"n": "later"}, 3600)
        await layer.delay_add(channel, {"n": "now"}, 0)
        done = await layer.delay_deliver()
        assert (done.delivered, done.dropped) == (1, ())
        assert 3000 < done.next_due <= 3600
        assert await self.receive(layer, channel) == {"n": "now"}
        again = await layer.delay_deliver()
        assert again.delivered == 0
        await self.assert_nothing(layer, channel)

    async def test_due_messages_arrive_in_due_order(self, layer):
        needs(layer, "delay")
        channel = fresh("delayed")
        # Due in another order than added, 0.3 s apart: adds slower than that on a loaded
        # machine (a Cluster's round trips) are what could change it, and the due times are
        # the layer's to keep, so they are set from one moment.
        started = asyncio.get_running_loop().time()
        for n, delay in enumerate([0.9, 0.3, 0.6, 0.0]):
            elapsed = asyncio.get_running_loop().time() - started
            await layer.delay_add(channel, {"n": n}, max(0.0, delay - elapsed))
        await asyncio.sleep(1.0)
        done = await layer.delay_deliver()
        assert (done.delivered, done.next_due) == (4, None)
        assert [(await self.receive(layer, channel))["n"] for _ in range(4)] == [3, 1, 2, 0]

    async def test_limit_leaves_the_rest_due_at_once(self, layer):
        needs(layer, "delay")
        channel = fresh("delayed")
        for n in range(5):
            await layer.delay_add(channel, {"n": n}, 0)
        first = await layer.delay_deliver(limit=2)
        assert (first.delivered, first.next_due) == (2, 0)
        rest = await layer.delay_deliver()
        assert (rest.delivered, rest.next_due) == (3, None)
        assert sorted([(await self.receive(layer, channel))["n"] for _ in range(5)]) == [
            0,
            1,
            2,
            3,
            4,
        ]

    async def test_concurrent_deliveries_deliver_each_message_once(self, layer):
        needs(layer, "delay")
        channel, count = fresh("delayed"), 60
        for n in range(count):
            await layer.delay_add(channel, {"n": n}, 0)
        results = await asyncio.gather(*(layer.delay_deliver(limit=7) for _ in range(20)))
        assert sum(done.delivered for done in results) == count
        received = [(await self.receive(layer, channel))["n"] for _ in range(count)]
        assert sorted(received) == list(range(count))
        await self.assert_nothing(layer, channel)

    async def test_process_specific_channels_get_delayed_messages(self, layer):
        needs(layer, "delay")
        channel = await layer.new_channel()
        await layer.delay_add(channel, {"reply": True}, 0)
        assert (await layer.delay_deliver()).delivered == 1
        assert await self.receive_prefix(layer, layer.process_prefix()) == (
            channel,
            {"reply": True},
        )

    async def test_full_channel_is_retried_until_expiry_then_dropped(self, layer_factory):
        layer = await layer_factory(capacity=1, expiry=self.short_expiry)
        needs(layer, "delay")
        freed, still_full = fresh("freed"), fresh("full")
        for channel in (freed, still_full):
            await layer.send(channel, {"filler": 1})
            await layer.delay_add(channel, {"delayed": channel}, 0)
        kept = await layer.delay_deliver()
        assert (kept.delivered, kept.dropped) == (0, ())
        assert 0 < kept.next_due <= DELAY_RETRY_INTERVAL + 0.01
        assert await self.receive(layer, freed) == {"filler": 1}
        await asyncio.sleep(DELAY_RETRY_INTERVAL + self.expiry_margin)
        # The first filler has expired: a fresh one keeps the channel full.
        await layer.send(still_full, {"filler": 2})
        done = await layer.delay_deliver()
        assert (done.delivered, done.dropped, done.next_due) == (1, (still_full,), None)
        assert await self.receive(layer, freed) == {"delayed": freed}
        assert await self.receive(layer, still_full) == {"filler": 2}

    async def test_flush_drops_delayed_messages(self, layer):
        needs(layer, "delay")
        channel = fresh("delayed")
        await layer.delay_add(channel, {"n": 1}, 0)
        await layer.flush()
        done = await layer.delay_deliver()
        assert (done.delivered, done.next_due) == (0, None)

    @pytest.mark.parametrize("delay", [-1, float("nan"), float("inf"), "5", True, None])
    async def test_bad_delays_raise_value_error(self, layer, delay):
        needs(layer, "delay")
        with pytest.raises(ValueError, match="not a number of seconds"):
            await layer.delay_add(fresh("delayed"), {"n": 1}, delay)

    async def test_bad_names_and_messages_raise_as_send_does(self, layer):
        needs(layer, "delay")
        with pytest.raises(InvalidChannelName):
            await layer.delay_add("has space", {"n": 1}, 0)
        with pytest.raises(MessageError):
            await layer.delay_add(fresh("delayed"), ["not", "a", "dict"], 0)
        done = await layer.delay_deliver()
        assert (done.delivered, done.next_due) == (0, None)
