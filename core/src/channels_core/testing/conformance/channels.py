"""Conformance: sending and receiving on one channel (order, concurrent receivers and
senders), and receives cancelled around the arrival of their message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

from ...exceptions import ChannelFull
from .base import ConformanceBase, fresh


class ChannelConformance(ConformanceBase):
    """Send and receive: FIFO order, exactly-once delivery, cancellation."""

    # Sending and receiving -----------------------------------------------------------

    async def test_send_then_receive_returns_an_equal_message(self, layer):
        channel = fresh("basic")
        await layer.send(channel, {"text": "hello", "n": 1})
        assert await self.receive(layer, channel) == {"text": "hello", "n": 1}

    async def test_receive_waits_for_a_send_made_later(self, layer):
        channel = fresh("later")
        task = await self.started(layer.receive(channel))
        assert not task.done()
        await layer.send(channel, {"n": 1})
        assert await asyncio.wait_for(task, self.receive_timeout) == {"n": 1}

    async def test_one_channel_delivers_in_send_order(self, layer_factory):
        layer = await layer_factory(capacity=1000)
        channel = fresh("order")
        for n in range(1000):
            await layer.send(channel, {"n": n})
        received = [(await self.receive(layer, channel))["n"] for _ in range(1000)]
        assert received == list(range(1000))
        await self.assert_nothing(layer, channel)

    async def test_channels_do_not_share_messages(self, layer):
        first, second = fresh("first"), fresh("second")
        await layer.send(first, {"to": "first"})
        await self.assert_nothing(layer, second)
        assert await self.receive(layer, first) == {"to": "first"}

    async def test_two_waiting_receivers_each_get_one_message(self, layer):
        channel = fresh("two")
        tasks = [await self.started(layer.receive(channel)) for _ in range(2)]
        await layer.send(channel, {"n": 1})
        await layer.send(channel, {"n": 2})
        results = await asyncio.wait_for(asyncio.gather(*tasks), self.receive_timeout)
        assert sorted(message["n"] for message in results) == [1, 2]

    async def test_many_receivers_get_every_message_exactly_once_in_order(self, layer_factory):
        receivers, per_receiver = 20, 500
        total = receivers * per_receiver
        layer = await layer_factory(capacity=total)
        channel = fresh("crowd")
        got: list[list[int]] = [[] for _ in range(receivers)]

        async def receive_forever(index: int) -> None:
            while True:
                got[index].append((await layer.receive(channel))["n"])

        tasks = [asyncio.ensure_future(receive_forever(index)) for index in range(receivers)]
        for n in range(total):
            await layer.send(channel, {"n": n})
            if n % 100 == 99:
                await asyncio.sleep(0)  # let receivers run while the sender goes on
        await self.wait_for_count(lambda: sum(map(len, got)), total)
        outcomes = await self.cancel(*tasks)
        assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
        received = [n for ns in got for n in ns]
        assert Counter(received) == Counter(range(total)), "lost or duplicated messages"
        for ns in got:
            assert ns == sorted(ns), "a receiver saw messages out of send order"
        await self.assert_nothing(layer, channel)

    async def test_many_senders_retrying_on_full_lose_and_duplicate_nothing(self, layer_factory):
        senders, per_sender, receivers = 10, 200, 5
        layer = await layer_factory(capacity=10)
        channel = fresh("busy")
        got: list[list[tuple[int, int]]] = [[] for _ in range(receivers)]

        async def send_all(sender: int) -> None:
            for n in range(per_sender):
                for _attempt in range(10_000):
                    try:
                        await layer.send(channel, {"sender": sender, "n": n})
                        break
                    except ChannelFull:
                        await asyncio.sleep(0.001)
                else:
                    pytest.fail("The channel stayed full although receivers were draining it.")

        async def receive_forever(index: int) -> None:
            while True:
                message = await layer.receive(channel)
                got[index].append((message["sender"], message["n"]))

        receiving = [asyncio.ensure_future(receive_forever(i)) for i in range(receivers)]
        await asyncio.wait_for(asyncio.gather(*(send_all(sender) for sender in range(senders))), 60)
        await self.wait_for_count(lambda: sum(map(len, got)), senders * per_sender)
        await self.cancel(*receiving)
        received = [pair for pairs in got for pair in pairs]
        expected = [(sender, n) for sender in range(senders) for n in range(per_sender)]
        assert Counter(received) == Counter(expected), "lost or duplicated messages"
        for pairs in got:
            for sender in range(senders):
                ns = [n for s, n in pairs if s == sender]
                assert ns == sorted(ns), "one sender's messages arrived out of order"

    # Cancellation --------------------------------------------------------------------

    async def test_receive_cancelled_while_waiting_leaves_later_message_for_next_receive(
        self, layer
    ):
        channel = fresh("cancel")
        task = await self.started(layer.receive(channel))
        await self.cancel(task)
        await layer.send(channel, {"n": 1})
        assert await self.receive(layer, channel) == {"n": 1}

    async def test_receive_timeouts_lose_no_later_message(self, layer):
        channel = fresh("timeouts")
        for _ in range(20):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(layer.receive(channel), 0.001)
        await layer.send(channel, {"n": 1})
        assert await self.receive(layer, channel) == {"n": 1}

    @pytest.mark.parametrize("yields_before_cancel", [0, 1, 2, 3, 5])
    async def test_receive_cancelled_as_its_message_arrives_loses_nothing(
        self, layer, yields_before_cancel
    ):
        # The cancellation lands at various points around the hand-off of the message; the
        # message is either returned by the cancelled receive or still there for the next.
        channel = fresh("race")
        delivered = []
        for n in range(20):
            task = await self.started(layer.receive(channel), delay=0.002)
            await layer.send(channel, {"n": n})
            for _ in range(yields_before_cancel):
                await asyncio.sleep(0)
            (outcome,) = await self.cancel(task)
            if isinstance(outcome, asyncio.CancelledError):
                outcome = await self.receive(layer, channel)
            delivered.append(outcome["n"])
        assert delivered == list(range(20))
        await self.assert_nothing(layer, channel)

    async def test_cancelled_receive_with_another_receiver_waiting_loses_nothing(self, layer):
        channel = fresh("handover")
        first = await self.started(layer.receive(channel))
        second = await self.started(layer.receive(channel))
        await layer.send(channel, {"n": 1})
        first.cancel()
        outcomes = await asyncio.gather(first, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            outcomes.append(await asyncio.wait_for(second, self.absent_timeout))
        await self.cancel(second)
        messages = [outcome for outcome in outcomes if isinstance(outcome, dict)]
        if not messages:
            messages.append(await self.receive(layer, channel))
        assert messages == [{"n": 1}]
        await self.assert_nothing(layer, channel)

    @pytest.mark.parametrize("yields_before_cancel", [0, 1, 3])
    async def test_receive_prefix_cancelled_as_its_message_arrives_loses_nothing(
        self, layer, yields_before_cancel
    ):
        prefix = layer.process_prefix("specific")
        delivered = []
        for n in range(20):
            channel = await layer.new_channel()
            task = await self.started(layer.receive_prefix(prefix), delay=0.002)
            await layer.send(channel, {"n": n})
            for _ in range(yields_before_cancel):
                await asyncio.sleep(0)
            (outcome,) = await self.cancel(task)
            if isinstance(outcome, asyncio.CancelledError):
                outcome = await self.receive_prefix(layer, prefix)
            assert outcome == (channel, {"n": n})
            delivered.append(n)
        assert delivered == list(range(20))
