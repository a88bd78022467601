"""Riding out a layer's outage (``channels_core.outage``): the host and consumers' sends held
in order while a real ``redis-server`` is down, the limits of ``CHANNELS["LAYER_OUTAGE"]``,
draining, and a receive loop that retries.

Each test starts its own Redis server and kills it (``SIGKILL``); the process-level behaviour
(WebSockets, HTTP, workers) is in ``tests/worker_mode/test_layer_outage.py``.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.test import override_settings

from channels_core import Channel, Group, local
from channels_core.exceptions import (
    EventRefused,
    ImproperlyConfigured,
    InvalidChannelName,
    LayerUnavailable,
    MessageError,
)
from channels_core.host import Host
from channels_core.layers import get_channel_layer
from channels_core.limits import OutageLimits
from channels_core.local import deliver_from_layer
from channels_core.outage import outages
from channels_core.plugins import Registry
from channels_core.routing import route
from channels_core.settings import get_settings, parse_settings
from channels_core.testing.redis import RedisServer
from channels_core.worker import Worker

BOUND = 20.0
LAYER = "The channel layer 'default'"


def on(server: RedisServer, **outage) -> override_settings:
    """Settings with the default layer on *server* and ``LAYER_OUTAGE`` = *outage*."""
    layers = {"default": {"BACKEND": "redis", "CONFIG": {"hosts": [server.url]}}}
    return override_settings(CHANNEL_LAYERS=layers, CHANNELS={"LAYER_OUTAGE": outage})


async def until(condition) -> None:
    """Let the loop run until ``condition()`` holds; fail after BOUND seconds."""
    for _ in range(int(BOUND / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"Still not true after {BOUND} s.")


def messages(caplog, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


@pytest.fixture
def redis():
    with RedisServer() as server:
        yield server


@pytest.fixture
async def host(redis):
    """``host(**outage)``: a worker-mode host on the test's Redis server, with
    ``LAYER_OUTAGE`` = *outage*; one per test, closed with its layer at the end."""
    made: list = []

    def make(**outage) -> Host:
        assert not made, "one host per test"
        settings = on(redis, **outage)
        settings.enable()
        made.append(settings)
        served = Host(get_settings(), Registry.from_plugins({}), mode="worker")
        made.append(served)
        return served

    yield make
    if made:
        settings, served = made
        try:
            await served.close()
            await get_channel_layer().close()
        finally:
            settings.disable()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (5, r"LAYER_OUTAGE'\] is 5; it must be a dict"),
        ({"timout": 1}, r"unknown key\(s\) \['timout'\]; the keys are 'timeout', 'buffer'"),
        ({"timeout": 0}, r"\['timeout'\] is 0; it must be a number of seconds more than zero"),
        ({"timeout": "10"}, r"\['timeout'\] is '10'"),
        ({"buffer": -1}, r"\['buffer'\] is -1; it must be a whole number of bytes"),
        ({"buffer": 1.5}, r"\['buffer'\] is 1.5"),
        ({"buffer": True}, r"\['buffer'\] is True"),
    ],
)
def test_a_bad_layer_outage_setting_is_one_sentence(value, error):
    with pytest.raises(ImproperlyConfigured, match=error):
        parse_settings(channels={"LAYER_OUTAGE": value})


def test_layer_outage_defaults_and_partial_settings():
    assert parse_settings().layer_outage == OutageLimits(timeout=10.0, buffer=16 * 1024 * 1024)
    assert parse_settings(channels={"LAYER_OUTAGE": {"timeout": 2}}).layer_outage == (
        OutageLimits(timeout=2.0)
    )
    assert parse_settings(channels={"LAYER_OUTAGE": {"buffer": 0}}).layer_outage.buffer == 0


async def test_sends_during_an_outage_are_held_and_sent_in_order_when_back(host, redis, caplog):
    caplog.set_level(logging.WARNING, logger="channels_core.outage")
    served = host()
    layer = get_channel_layer()
    await served.send("outage.events", {"n": 0})
    redis.kill()
    # The host's sends and a consumer's Channel sends share the buffer, and its order.
    for n in range(1, 31):
        if n % 3:
            await asyncio.wait_for(served.send("outage.events", {"n": n}), BOUND)
        else:
            await asyncio.wait_for(Channel("outage.events").send({"n": n}), BOUND)
    assert served._outage.held == 30
    assert layer in outages
    redis.start()  # empty: n=0 was lost with the restart (no persistence)
    received = [
        (await asyncio.wait_for(layer.receive("outage.events"), BOUND))["n"] for _ in range(30)
    ]
    assert received == list(range(1, 31))
    await until(lambda: layer not in outages)
    assert served._outage.held == 0
    assert len(messages(caplog, f"{LAYER} is unreachable")) == 1
    [back] = messages(caplog, f"{LAYER} is back after")
    assert "the 30 sends held for it meanwhile were sent" in back
    # Over: sends go straight to the layer again.
    await served.send("outage.events", {"n": "after"})
    assert await asyncio.wait_for(layer.receive("outage.events"), BOUND) == {"n": "after"}


async def test_group_calls_during_an_outage_are_held_in_order_with_the_sends(host, redis, caplog):
    caplog.set_level(logging.WARNING, logger="channels_core.outage")
    served = host()
    layer = get_channel_layer()
    room = Group("outage.room")
    redis.kill()
    # A consumer's group calls and channel sends, all while Redis is down: the first one
    # begins the outage, and they are made in this order once it is back.
    await asyncio.wait_for(room.add("outage.first"), BOUND)
    assert layer in outages
    await room.add(Channel("outage.second"), presence={"name": "second"})
    assert await room.send({"n": 1}) is None  # held: its position is not known yet
    await room.discard("outage.first")
    assert await room.send({"n": 2}) is None
    await Channel("outage.first").send({"direct": True})
    assert served._outage.held == 6
    redis.start()

    async def received(channel: str) -> dict:
        return await asyncio.wait_for(layer.receive(channel), BOUND)

    assert [await received("outage.first") for _ in range(2)] == [{"n": 1}, {"direct": True}]
    assert [await received("outage.second") for _ in range(2)] == [{"n": 1}, {"n": 2}]
    await until(lambda: layer not in outages)
    assert await layer.group_presence("outage.room") == {"outage.second": {"name": "second"}}
    [back] = messages(caplog, f"{LAYER} is back after")
    assert "the 6 sends held for it meanwhile were sent" in back
    # A bad name is refused at once, as the layer would, not lost in the flush.
    redis.kill()
    await asyncio.wait_for(Channel("outage.first").send({"n": 3}), BOUND)
    with pytest.raises(MessageError, match="cannot carry"):
        await room.send({"n": object()})
    with pytest.raises(InvalidChannelName, match="'bad channel name'"):
        await room.add("bad channel name")
    assert served._outage.held == 1


async def test_an_outage_outlasting_its_timeout_refuses_new_sends_and_keeps_the_held(
    host, redis, caplog
):
    served = host(timeout=0.3)
    layer = get_channel_layer()
    redis.kill()
    for n in range(3):
        await asyncio.wait_for(served.send("outage.events", {"n": n}), BOUND)
    await asyncio.sleep(0.4)
    with pytest.raises(EventRefused, match=r"longer than CHANNELS\['LAYER_OUTAGE'\]\['timeout'\]"):
        await asyncio.wait_for(served.send("outage.events", {"n": "late"}), BOUND)
    assert served.counters.snapshot().refused == {"outage.events": 1}
    [kept] = messages(caplog, "new sends are refused until it is back")
    assert "the 3 sends held for it are kept and sent then" in kept
    assert not messages(caplog, "are lost")
    redis.start()
    async with asyncio.timeout(BOUND):
        while True:  # refused until the held sends get through again
            try:
                await served.send("outage.events", {"n": "back"})
                break
            except EventRefused:
                await asyncio.sleep(0.05)
    # What was accepted before the timeout arrives first, in order; nothing was lost.
    received = [
        (await asyncio.wait_for(layer.receive("outage.events"), BOUND))["n"] for _ in range(4)
    ]
    assert received == [0, 1, 2, "back"]
    await until(lambda: layer not in outages)
    assert messages(caplog, f"{LAYER} is back after")


async def test_a_full_buffer_refuses_what_does_not_fit(host, redis):
    served = host(buffer=300)
    redis.kill()
    await asyncio.wait_for(served.send("outage.events", {"data": "x" * 100}), BOUND)
    await asyncio.wait_for(served.send("outage.events", {"data": "x" * 100}), BOUND)
    with pytest.raises(EventRefused, match=r"fill CHANNELS\['LAYER_OUTAGE'\]\['buffer'\] \(300"):
        await asyncio.wait_for(served.send("outage.events", {"data": "x" * 100}), BOUND)
    # What fits still goes in, behind the others.
    await asyncio.wait_for(served.send("outage.events", {"n": 1}), BOUND)
    assert served._outage.held == 3
    # A bad message is refused as the layer would refuse it, not held and lost later.
    with pytest.raises(MessageError, match="cannot carry"):
        await served.send("outage.events", {"n": object()})


async def test_a_zero_buffer_holds_nothing(host, redis):
    served = host(buffer=0)
    redis.kill()
    with pytest.raises(EventRefused, match="unreachable"):
        await asyncio.wait_for(served.send("outage.events", {"n": 1}), BOUND)
    assert get_channel_layer() not in outages


async def test_a_process_that_rides_out_nothing_raises_as_before(redis):
    """No host or worker made a buffer for the layer (a Django view, a command): a send during
    an outage raises LayerUnavailable at once, as it always did."""
    with on(redis):
        try:
            redis.kill()
            with pytest.raises(LayerUnavailable, match="unreachable"):
                await asyncio.wait_for(Channel("outage.events").send({"n": 1}), BOUND)
            assert not outages
        finally:
            await get_channel_layer().close()


async def test_draining_waits_for_the_held_sends_then_closing_logs_them_lost(host, redis, caplog):
    served = host()
    redis.kill()
    for n in range(3):
        await asyncio.wait_for(served.send("outage.events", {"n": n}), BOUND)
    assert not await served.drain(0.2)
    await served.close()
    [lost] = messages(caplog, "held for it are lost")
    assert "still unreachable as this process stops: the 3 sends held for it are lost" in lost
    assert get_channel_layer() not in outages


async def test_a_drain_ends_once_the_held_sends_went_out(host, redis):
    served = host()
    redis.kill()
    await asyncio.wait_for(served.send("outage.events", {"n": 1}), BOUND)
    redis.start()
    assert await served.drain(BOUND)
    assert await asyncio.wait_for(get_channel_layer().receive("outage.events"), BOUND) == {"n": 1}


async def test_a_worker_holds_its_consumers_sends_and_receives_after_the_outage(redis, caplog):
    caplog.set_level(logging.WARNING, logger="channels_core.outage")
    entered, gate = asyncio.Event(), asyncio.Event()

    async def echo(message):
        entered.set()
        await gate.wait()
        await Channel(message.content["reply"]).send({"echo": message.content["n"]})

    layers = {
        "default": {
            "BACKEND": "redis",
            "ROUTING": [route("outage.work", echo)],
            "CONFIG": {"hosts": [redis.url]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        worker = Worker(shutdown_timeout=BOUND)
        running = asyncio.create_task(worker.run())
        layer = get_channel_layer()
        try:
            await layer.send("outage.work", {"n": 1, "reply": "outage.replies"})
            await asyncio.wait_for(entered.wait(), BOUND)
            redis.kill()
            gate.set()  # the consumer replies while Redis is down: held, not raised
            await until(lambda: layer in outages)
            redis.start()
            assert await asyncio.wait_for(layer.receive("outage.replies"), BOUND) == {"echo": 1}
            # The worker's receive loop went on through the outage.
            await send_when_writable(layer, "outage.work", {"n": 2, "reply": "outage.replies"})
            assert await asyncio.wait_for(layer.receive("outage.replies"), BOUND) == {"echo": 2}
            worker.stop()
            assert await asyncio.wait_for(running, BOUND) == 0
        finally:
            running.cancel()
            await layer.close()
    assert len(messages(caplog, f"{LAYER} is unreachable")) == 1
    assert "the 1 sends held for it meanwhile were sent" in caplog.text


async def test_a_reply_receiver_retries_a_failing_receive_until_it_works(host, redis, caplog):
    """A Redis that refuses writes (a replica: READONLY) makes receives raise; the loop that
    hands replies to connections retries, logs once, and goes on when Redis takes them."""
    host()
    layer = get_channel_layer()
    caplog.set_level(logging.WARNING, logger="channels_core.outage")
    prefix = layer.process_prefix("outage.reply")
    delivered: list[dict] = []
    name = prefix + "a"
    local.bind(name, delivered.append)
    receiver = asyncio.ensure_future(deliver_from_layer(layer, prefix))
    try:
        await layer.send(name, {"n": 1})
        await until(lambda: delivered)
        redis.cli("REPLICAOF", "127.0.0.1", "1")  # nothing there: it stays read-only
        await until(lambda: messages(caplog, f"Receiving the replies for {prefix} failed"))
        assert not receiver.done()
        redis.cli("REPLICAOF", "NO", "ONE")
        await send_when_writable(layer, name, {"n": 2})
        await until(lambda: len(delivered) == 2)
        assert delivered == [{"n": 1}, {"n": 2}]
        assert len(messages(caplog, f"Receiving the replies for {prefix} failed")) == 1
        assert len(messages(caplog, f"Receiving the replies for {prefix} again after")) == 1
    finally:
        receiver.cancel()
        local.unbind(name)


async def send_when_writable(layer, channel: str, content: dict) -> None:
    async with asyncio.timeout(BOUND):
        while True:
            try:
                return await layer.send(channel, content)
            except LayerUnavailable:
                await asyncio.sleep(0.05)
