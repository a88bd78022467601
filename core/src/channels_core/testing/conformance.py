"""The channel layer conformance suite: the tests every layer passes.

A layer distribution runs the suite against itself by subclassing :class:`LayerConformance`
in one of its test modules and giving it a ``make_layer`` fixture, the way devpi runs one
storage suite against every backend::

    import pytest
    from channels_core.testing.conformance import LayerConformance
    from channels_mylayer import MyLayer

    class TestMyLayer(LayerConformance):
        @pytest.fixture
        def make_layer(self, my_server):
            def make(**config):
                return MyLayer(hosts=[my_server.address], **config)
            return make

``make_layer`` returns a callable taking the common layer options as keyword arguments
(``expiry``, ``group_expiry``, ``capacity``, ``channel_capacity``, ``max_message_size``) and
returning a new layer, or an awaitable of one when building it needs I/O. Every layer it makes
must start empty (a layer that shares a server between tests flushes or uses a fresh prefix),
and the suite closes each one when its test ends (a second ``close`` must not fail; a
``LayerClosed`` from it is ignored). Each test picks fresh random channel and group names.

What the suite checks: FIFO order per channel; each message delivered once under many
concurrent receivers and senders; cancelled receives lose nothing; expiry; ``capacity`` and
``channel_capacity`` (glob and regex) with ``ChannelFull`` and its count; process-specific
channels, ``new_channel`` and ``receive_prefix``; groups (add, renew, discard, send, expiry,
full members); ``flush``; ``close``; ``stats``; and bad input (names, oversized, non-dict and
non-msgpack-safe messages) with the right errors; and that sender and receiver never share a
message object. It uses only the public layer API, so it runs against an in-process layer and
against one backed by a server alike.

Every wait is bounded by :attr:`LayerConformance.receive_timeout`, and "nothing arrives" is
judged by waiting :attr:`LayerConformance.absent_timeout`; a slow backend may raise either in
its subclass. Expiry tests sleep a fraction of a second, so the suite takes a few seconds.
The tests are coroutines marked for pytest-asyncio, so they run in its strict and auto modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from ..exceptions import (
    ChannelFull,
    ImproperlyConfigured,
    InvalidChannelName,
    LayerClosed,
    MessageError,
    MessageTooLarge,
)
from ..layers import BaseChannelLayer
from ..names import random_suffix

LayerFactory = Callable[..., Awaitable[BaseChannelLayer]]

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


def fresh(base: str) -> str:
    """A channel or group name no other test uses: *base* plus a random part."""
    return f"{base}.{random_suffix()}".replace("-", "_")


class LayerConformance:
    """The conformance tests; subclass it and override the ``make_layer`` fixture."""

    pytestmark = pytest.mark.asyncio

    #: Bound on every wait that must end with a message.
    receive_timeout: float = 5.0
    #: How long to wait before concluding that no message will come.
    absent_timeout: float = 0.2
    #: The expiry (seconds) the expiry tests configure, and how long they sleep past it.
    short_expiry: float = 0.2
    expiry_margin: float = 0.15

    @pytest.fixture
    def make_layer(self) -> Callable[..., Any]:
        """Override in the subclass: a callable ``(**config) -> layer`` (or its awaitable)."""
        pytest.fail(
            f"{type(self).__name__} runs the layer conformance suite but defines no "
            "make_layer fixture: add one returning a callable that builds your layer."
        )

    @pytest_asyncio.fixture
    async def layer_factory(self, make_layer: Callable[..., Any]):
        """Builds layers with ``await layer_factory(**config)`` and closes them afterwards."""
        layers: list[BaseChannelLayer] = []

        async def factory(**config: Any) -> BaseChannelLayer:
            layer = make_layer(**config)
            if inspect.isawaitable(layer):
                layer = await layer
            layers.append(layer)
            return layer

        yield factory
        for layer in layers:
            with contextlib.suppress(LayerClosed):
                await asyncio.wait_for(layer.close(), self.receive_timeout)

    @pytest_asyncio.fixture
    async def layer(self, layer_factory: LayerFactory) -> BaseChannelLayer:
        """A layer with the default options."""
        return await layer_factory()

    # Helpers -------------------------------------------------------------------------

    async def receive(self, layer: BaseChannelLayer, channel: str) -> dict:
        """The next message of *channel*, failing the test if none comes in time."""
        return await asyncio.wait_for(layer.receive(channel), self.receive_timeout)

    async def receive_prefix(self, layer: BaseChannelLayer, prefix: str) -> tuple[str, dict]:
        """The next ``(channel, message)`` under *prefix*, failing if none comes in time."""
        return await asyncio.wait_for(layer.receive_prefix(prefix), self.receive_timeout)

    async def assert_nothing(self, layer: BaseChannelLayer, channel: str) -> None:
        """Assert that no message arrives on *channel* within ``absent_timeout``."""
        try:
            message = await asyncio.wait_for(layer.receive(channel), self.absent_timeout)
        except TimeoutError:
            return
        pytest.fail(f"Expected no message on {channel!r}, got {message!r}.")

    async def started(self, coroutine: Awaitable[Any], delay: float = 0.02) -> asyncio.Task:
        """Run *coroutine* as a task and give it *delay* seconds to start waiting."""
        task = asyncio.ensure_future(coroutine)
        await asyncio.sleep(delay)
        return task

    @staticmethod
    async def cancel(*tasks: asyncio.Task) -> list[Any]:
        """Cancel *tasks* and return what each ended with (result or exception)."""
        for task in tasks:
            task.cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_for_count(self, counted: Callable[[], int], target: int) -> None:
        """Wait until ``counted()`` reaches *target*, failing when it stops progressing."""
        last, last_change = counted(), time.monotonic()
        deadline = time.monotonic() + 60
        while counted() < target:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            if counted() != last:
                last, last_change = counted(), now
            elif now - last_change > self.receive_timeout or now > deadline:
                pytest.fail(f"Only {counted()} of {target} messages arrived; then none.")

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

    # Process-specific channels -------------------------------------------------------

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

    # Groups --------------------------------------------------------------------------

    async def test_group_send_reaches_every_member(self, layer):
        group, channels = fresh("group"), [fresh("member") for _ in range(5)]
        for channel in channels:
            await layer.group_add(group, channel)
        await layer.group_send(group, {"text": "all"})
        for channel in channels:
            assert await self.receive(layer, channel) == {"text": "all"}
        assert (await layer.stats()).pending == 0

    async def test_group_add_twice_delivers_once(self, layer):
        group, channel = fresh("group"), fresh("member")
        await layer.group_add(group, channel)
        await layer.group_add(group, channel)
        await layer.group_send(group, {"n": 1})
        assert await self.receive(layer, channel) == {"n": 1}
        await self.assert_nothing(layer, channel)

    async def test_group_discard_stops_delivery_to_that_member_only(self, layer):
        group, kept, gone = fresh("group"), fresh("kept"), fresh("gone")
        await layer.group_add(group, kept)
        await layer.group_add(group, gone)
        await layer.group_discard(group, gone)
        await layer.group_send(group, {"n": 1})
        assert await self.receive(layer, kept) == {"n": 1}
        await self.assert_nothing(layer, gone)

    async def test_group_discard_of_a_non_member_and_send_to_an_empty_group_are_harmless(
        self, layer
    ):
        group = fresh("group")
        await layer.group_discard(group, fresh("stranger"))
        await layer.group_send(group, {"n": 1})
        assert (await layer.stats()).pending == 0

    async def test_group_membership_expires_after_group_expiry(self, layer_factory):
        layer = await layer_factory(group_expiry=self.short_expiry)
        group, channel = fresh("group"), fresh("member")
        await layer.group_add(group, channel)
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        await layer.group_send(group, {"n": 1})
        await self.assert_nothing(layer, channel)

    async def test_group_add_again_renews_membership(self, layer_factory):
        group_expiry = 2 * self.short_expiry + self.expiry_margin
        layer = await layer_factory(group_expiry=group_expiry)
        group, channel = fresh("group"), fresh("member")
        await layer.group_add(group, channel)
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        await layer.group_add(group, channel)
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        # Past group_expiry since the first add, within it since the second.
        await layer.group_send(group, {"n": 1})
        assert await self.receive(layer, channel) == {"n": 1}

    async def test_group_send_skips_a_full_member_and_counts_it(self, layer_factory):
        layer = await layer_factory(capacity=1)
        group, full, free = fresh("group"), fresh("full"), fresh("free")
        await layer.group_add(group, full)
        await layer.group_add(group, free)
        await layer.send(full, {"n": 0})
        await layer.group_send(group, {"n": 1})
        assert await self.receive(layer, free) == {"n": 1}
        assert await self.receive(layer, full) == {"n": 0}
        await self.assert_nothing(layer, full)
        assert (await layer.stats(full)).full_count == 1
        assert (await layer.stats()).full_count == 1

    async def test_group_send_reaches_process_specific_members_through_receive_prefix(self, layer):
        group = fresh("group")
        channels = [await layer.new_channel() for _ in range(3)]
        for channel in channels:
            await layer.group_add(group, channel)
        await layer.group_send(group, {"n": 1})
        received = [await self.receive_prefix(layer, layer.process_prefix()) for _ in range(3)]
        assert sorted(received) == sorted((channel, {"n": 1}) for channel in channels)

    async def test_group_members_lists_current_members(self, layer):
        if type(layer).group_members is BaseChannelLayer.group_members:
            pytest.skip("this layer does not list group members (optional)")
        group, first, second = fresh("group"), fresh("first"), fresh("second")
        await layer.group_add(group, first)
        await layer.group_add(group, second)
        await layer.group_discard(group, first)
        assert await layer.group_members(group) == [second]

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
            with pytest.raises(InvalidChannelName):
                await asyncio.wait_for(call(), self.receive_timeout)

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
