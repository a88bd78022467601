"""Channel and Group from async and sync code, on the real memory layer."""

from __future__ import annotations

import asyncio
import threading

import pytest

from channels_core import Channel, Group, Message, get_channel_layer, local, new_channel
from channels_core.exceptions import InvalidChannelName
from channels_core.layers import channel_layers


@pytest.fixture(autouse=True)
def fresh_layer():
    channel_layers.reset()
    yield
    channel_layers.reset()


def run_in_plain_thread(function):
    """Run *function* in a thread with no event loop, as a sync consumer or a view would."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed back to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the sync call hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


async def test_send_from_async_code_returns_an_awaitable():
    await Channel("jobs").send({"n": 1})
    message = await asyncio.wait_for(get_channel_layer().receive("jobs"), 5)
    assert message == {"n": 1}


async def test_send_from_sync_code_blocks_until_the_message_is_on_the_layer():
    result = await asyncio.to_thread(
        lambda: run_in_plain_thread(lambda: Channel("jobs").send({"n": 2}))
    )
    assert result is None
    message = await asyncio.wait_for(get_channel_layer().receive("jobs"), 5)
    assert message == {"n": 2}


async def test_a_channel_bound_in_this_process_is_a_direct_call():
    received = []
    name = await get_channel_layer().new_channel("probe.send")
    local.bind(name, received.append, asyncio.get_running_loop())
    try:
        await Channel(name).send({"text": "direct"})
        assert received == [{"text": "direct"}]
        assert (await get_channel_layer().stats(name)).pending == 0
        # From another thread the call is handed to the handler's loop.
        await asyncio.to_thread(
            lambda: run_in_plain_thread(lambda: Channel(name).send({"text": "threaded"}))
        )
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        assert received == [{"text": "direct"}, {"text": "threaded"}]
    finally:
        local.unbind(name)
    await Channel(name).send({"text": "via layer"})
    assert await asyncio.wait_for(get_channel_layer().receive(name), 5) == {"text": "via layer"}


async def test_group_add_send_discard_from_async_code():
    first = await new_channel("member")
    second = await new_channel("member")
    assert "!" in first.name
    room = Group("room-1")
    await room.add(first)
    await room.add(second.name)
    await room.send({"text": "hello"})
    layer = get_channel_layer()
    assert await asyncio.wait_for(layer.receive(first.name), 5) == {"text": "hello"}
    assert await asyncio.wait_for(layer.receive(second.name), 5) == {"text": "hello"}
    await room.discard(first)
    await room.send({"text": "again"})
    assert await asyncio.wait_for(layer.receive(second.name), 5) == {"text": "again"}
    assert (await layer.stats(first.name)).pending == 0


async def test_group_from_sync_code():
    member = await new_channel("member")

    def sync_side():
        Group("room-2").add(member)
        Group("room-2").send({"text": "from sync"})

    await asyncio.to_thread(lambda: run_in_plain_thread(sync_side))
    assert await asyncio.wait_for(get_channel_layer().receive(member.name), 5) == {
        "text": "from sync"
    }


def test_bad_names_fail_at_construction():
    with pytest.raises(InvalidChannelName):
        Channel("no spaces")
    with pytest.raises(InvalidChannelName):
        Group("no!bang")


def test_equality_and_representation():
    assert Channel("a") == Channel("a")
    assert Channel("a") != Channel("a", alias="other")
    assert len({Group("g"), Group("g")}) == 1
    assert repr(Channel("a")) == "<Channel a>"
    assert str(Channel("a")) == "a"


def test_message_exposes_content_channel_and_reply_channel():
    message = Message({"reply_channel": "x.send.AB!c", "text": "hi"}, "x.receive")
    assert message.channel == Channel("x.receive")
    assert message.reply_channel == Channel("x.send.AB!c")
    assert message["text"] == "hi"
    assert message.get("missing", 3) == 3
    assert "text" in message
    assert Message({}, "x.receive").reply_channel is None
    copied = message.copy()
    copied.content["text"] = "changed"
    assert message["text"] == "hi"


def test_a_message_checks_its_names_when_made_and_keeps_its_channels():
    with pytest.raises(InvalidChannelName):
        Message({"reply_channel": "no spaces"}, "x.receive")
    with pytest.raises(InvalidChannelName):
        Message({}, "no spaces")
    message = Message({"reply_channel": "x.send.AB!c"}, "x.receive", alias="other")
    assert message.channel is message.channel
    assert message.reply_channel is message.reply_channel
    assert (message.channel.alias, message.reply_channel.alias) == ("other", "other")
