"""The memory layer: the conformance suite, and what only an in-process layer promises."""

from __future__ import annotations

import asyncio
import threading

import pytest

from channels_core.exceptions import ChannelFull
from channels_core.layers import resolve_backend
from channels_core.testing.conformance import LayerConformance, fresh
from channels_memory import InMemoryChannelLayer


class TestMemoryLayerConformance(LayerConformance):
    """The shared layer contract, against the memory layer."""

    @pytest.fixture
    def make_layer(self):
        return InMemoryChannelLayer


RECEIVE_TIMEOUT = 5.0


def run_in_thread(coroutine_function, *args) -> None:
    """Run ``coroutine_function(*args)`` on a new event loop in a plain thread, to the end."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine_function(*args))
        except BaseException as error:  # reported to the test below
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(RECEIVE_TIMEOUT)
    assert not thread.is_alive(), "the sending thread did not finish"
    if errors:
        raise errors[0]


async def started(coroutine) -> asyncio.Task:
    task = asyncio.ensure_future(coroutine)
    await asyncio.sleep(0.01)
    return task


@pytest.fixture
async def layer():
    layer = InMemoryChannelLayer()
    yield layer
    await layer.close()


def test_memory_is_the_registered_memory_backend():
    assert resolve_backend("memory") is InMemoryChannelLayer


async def test_send_from_another_threads_loop_wakes_a_receiver_on_this_loop(layer):
    channel = fresh("threads")
    waiting = await started(layer.receive(channel))
    run_in_thread(layer.send, channel, {"from": "thread"})
    assert await asyncio.wait_for(waiting, RECEIVE_TIMEOUT) == {"from": "thread"}


async def test_send_from_another_thread_with_nobody_waiting_is_queued(layer):
    channel = fresh("threads")
    run_in_thread(layer.send, channel, {"from": "thread"})
    assert await asyncio.wait_for(layer.receive(channel), RECEIVE_TIMEOUT) == {"from": "thread"}


async def test_async_to_sync_send_from_a_plain_thread_reaches_this_loop(layer):
    from asgiref.sync import async_to_sync

    channel = fresh("asgiref")
    waiting = await started(layer.receive(channel))
    thread = threading.Thread(target=async_to_sync(layer.send), args=(channel, {"n": 1}))
    thread.start()
    thread.join(RECEIVE_TIMEOUT)
    assert await asyncio.wait_for(waiting, RECEIVE_TIMEOUT) == {"n": 1}


async def test_group_send_from_another_thread_reaches_receivers_here(layer):
    group = fresh("group")
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add(group, channel)
    waiting = [await started(layer.receive(channel)) for channel in channels]
    run_in_thread(layer.group_send, group, {"n": 1})
    results = await asyncio.wait_for(asyncio.gather(*waiting), RECEIVE_TIMEOUT)
    assert results == [{"n": 1}] * 3


async def test_receive_cancelled_before_a_cross_thread_hand_off_lands_loses_nothing(layer):
    channel = fresh("threads")
    waiting = await started(layer.receive(channel))
    # This loop is blocked while the thread sends, so the hand-off is scheduled on it
    # but has not run when the receive is cancelled.
    run_in_thread(layer.send, channel, {"n": 1})
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await asyncio.wait_for(layer.receive(channel), RECEIVE_TIMEOUT) == {"n": 1}


async def test_sends_from_several_threads_while_receiving_here_lose_nothing():
    layer = InMemoryChannelLayer(capacity=50)
    channel, threads_count, per_thread = fresh("threads"), 4, 500

    async def send_all(sender: int) -> None:
        for n in range(per_thread):
            for _attempt in range(100_000):
                try:
                    await layer.send(channel, {"sender": sender, "n": n})
                    break
                except ChannelFull:
                    await asyncio.sleep(0.0005)

    threads = [
        threading.Thread(target=asyncio.run, args=(send_all(sender),))
        for sender in range(threads_count)
    ]
    for thread in threads:
        thread.start()
    received = [
        await asyncio.wait_for(layer.receive(channel), RECEIVE_TIMEOUT)
        for _ in range(threads_count * per_thread)
    ]
    for thread in threads:
        thread.join(RECEIVE_TIMEOUT)
    await layer.close()
    for sender in range(threads_count):
        assert [m["n"] for m in received if m["sender"] == sender] == list(range(per_thread))


async def test_expired_messages_do_not_count_toward_capacity():
    layer = InMemoryChannelLayer(capacity=2, expiry=0.1)
    channel = fresh("expiry")
    await layer.send(channel, {"n": 0})
    await layer.send(channel, {"n": 1})
    await asyncio.sleep(0.2)
    await layer.send(channel, {"n": 2})
    await layer.send(channel, {"n": 3})
    assert [(await layer.receive(channel))["n"] for _ in range(2)] == [2, 3]
    assert (await layer.stats()).full_count == 0
    await layer.close()


async def test_drained_channels_are_forgotten(layer):
    # Reply channels of finished connections must not pile up in memory.
    for _ in range(5000):
        channel = await layer.new_channel()
        await layer.send(channel, {"n": 1})
        await layer.receive(channel)
    assert len(layer._channels) <= 2048


async def test_one_receive_prefix_serves_thousands_of_reply_channels(layer):
    prefix = layer.process_prefix()
    channels = [await layer.new_channel() for _ in range(3000)]
    waiting = await started(layer.receive_prefix(prefix))
    await layer.send(channels[1234], {"n": 1})
    assert await asyncio.wait_for(waiting, RECEIVE_TIMEOUT) == (channels[1234], {"n": 1})
    for index in (5, 2999, 5):
        await layer.send(channels[index], {"n": index})
    received = [await asyncio.wait_for(layer.receive_prefix(prefix), 1) for _ in range(3)]
    assert sorted(received) == sorted(
        [(channels[5], {"n": 5}), (channels[2999], {"n": 2999}), (channels[5], {"n": 5})]
    )


async def test_channel_full_error_is_a_sentence_with_the_fix():
    layer = InMemoryChannelLayer(capacity=1)
    await layer.send("full", {"n": 0})
    with pytest.raises(ChannelFull, match=r"Channel 'full' holds 1 messages.*raise its capacity"):
        await layer.send("full", {"n": 1})
    await layer.close()
