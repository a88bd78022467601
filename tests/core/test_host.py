"""The host contract (``channels_core.host.Host``) on a real memory layer and real routing.

Every event source uses these calls; here they are driven directly, in-process and in worker
mode, without sockets (the protocols' own tests cover the sockets).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.test import override_settings

from channels_core import Channel, route
from channels_core.exceptions import EventRefused, NoRoute, ReplyTimeout
from channels_core.host import Host
from channels_core.plugins import Registry
from channels_core.protocols import ProtocolSpec
from channels_core.settings import get_settings

TIMEOUT = 5
# What the late consumer waits for; each test that uses it puts a fresh event here.
gates: dict[str, asyncio.Event] = {}


async def answer(message):
    """Answers a question at once, on its reply channel."""
    await Channel(message.content["reply_channel"]).send({"answer": message.content["q"] * 2})


async def answer_then_linger(message):
    """Answers at once, then keeps running for a second."""
    await Channel(message.content["reply_channel"]).send({"answer": "early"})
    await asyncio.sleep(1)


async def late(message):
    """Never answers; raises once the test opens its gate."""
    await gates["late"].wait()
    raise RuntimeError("late trouble")


async def hang(message):
    """Never answers and never returns (until cancelled)."""
    await asyncio.Event().wait()


async def fail(message):
    """Raises before answering."""
    raise RuntimeError("the consumer broke")


def layers(**config):
    routing = [
        route("ask.answer", answer),
        route("ask.early", answer_then_linger),
        route("ask.hang", hang),
        route("ask.fail", fail),
        route("ask.late", late),
    ]
    return {"default": {"BACKEND": "memory", "ROUTING": routing, "CONFIG": config}}


def host(mode: str = "inprocess", protocols=(), asgi_app=None) -> Host:
    return Host(get_settings(), Registry.from_plugins({}), protocols, mode=mode, asgi_app=asgi_app)


@override_settings(CHANNEL_LAYERS=layers())
async def test_request_returns_the_first_reply():
    served = host()
    try:
        reply = await served.request(
            "ask.answer", {"q": "ab"}, reply_prefix="ask.reply", timeout=TIMEOUT
        )
        assert reply == {"answer": "abab"}
        assert served.in_flight == 0
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_request_takes_a_reply_sent_before_the_consumer_returns():
    served = host()
    try:
        reply = await asyncio.wait_for(
            served.request("ask.early", {}, reply_prefix="ask.reply", timeout=TIMEOUT), 0.15
        )
        assert reply == {"answer": "early"}
    finally:
        await served.drain(TIMEOUT)
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_request_without_a_route_raises_no_route_at_once():
    served = host()
    try:
        with pytest.raises(NoRoute, match=r"route\('ask\.nobody', a_consumer\)"):
            await served.request("ask.nobody", {}, reply_prefix="ask.reply", timeout=TIMEOUT)
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_request_times_out_even_while_the_consumer_hangs_in_process():
    served = host()
    try:
        with pytest.raises(ReplyTimeout, match=r"No reply to the 'ask\.hang' event came on"):
            await served.request("ask.hang", {}, reply_prefix="ask.reply", timeout=0.1)
        assert served.in_flight == 1  # the consumer itself, still running
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_request_raises_what_the_consumer_raised():
    served = host()
    try:
        with pytest.raises(RuntimeError, match="the consumer broke"):
            await served.request("ask.fail", {}, reply_prefix="ask.reply", timeout=TIMEOUT)
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers(capacity=1))
async def test_worker_mode_refusal_is_one_event_refused():
    served = host(mode="worker")
    try:
        assert await served.emit("ask.answer", {"q": "x"}) is True  # on the layer
        with pytest.raises(EventRefused) as refused:
            await served.emit("ask.answer", {"q": "y"})
        assert refused.value.channel == "ask.answer"
        assert type(refused.value.reason).__name__ == "ChannelFull"
        with pytest.raises(EventRefused):
            await served.request("ask.answer", {}, reply_prefix="ask.reply", timeout=TIMEOUT)
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_reply_handlers_plain_and_async_and_reply_closed():
    served = host()
    got = []
    done = asyncio.get_running_loop().create_future()

    async def slow(content):
        await asyncio.sleep(0)
        got.append(("async", content))
        done.set_result(None)

    try:
        plain = served.open_reply("probe.send", lambda content: got.append(("plain", content)))
        spawned = served.open_reply("probe.send", slow)
        assert plain.startswith("probe.send.")
        assert "!" in plain
        await Channel(plain).send({"n": 1})
        await Channel(spawned).send({"n": 2})
        await asyncio.wait_for(done, TIMEOUT)
        assert got == [("plain", {"n": 1}), ("async", {"n": 2})]
        closed = served.reply_closed(plain)
        assert not closed.done()
        served.close_reply(plain)
        assert closed.done()
        assert served.reply_closed(plain).done()  # no longer open: done at once
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_drain_waits_for_held_work_and_sets_draining():
    served = host()
    release = asyncio.Event()

    async def owed():
        with served.hold():
            await release.wait()

    served.spawn(owed())
    await asyncio.sleep(0)
    assert served.in_flight == 1
    assert not await served.drain(0.05)
    assert served.draining
    release.set()
    assert await served.drain(TIMEOUT)
    assert served.in_flight == 0
    await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_an_asgi_app_takes_the_channels_of_protocols_with_an_adapter():
    seen = []

    def adapter(host_, app):
        async def target(channel, content, *, reraise=False):
            seen.append((channel, app))
            return True

        return target

    spec = ProtocolSpec("probe", lambda server: [], emits=("probe.receive",), asgi_adapter=adapter)
    served = host(protocols=[spec], asgi_app="the app")
    try:
        assert await served.emit("probe.receive", {}) is True
        # Channels no adapter takes still go to the routing.
        assert await served.emit("ask.nobody", {}) is False
        assert seen == [("probe.receive", "the app")]
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_a_consumer_failing_after_the_timeout_is_logged(caplog):
    served = host()
    gates["late"] = asyncio.Event()
    try:
        with pytest.raises(ReplyTimeout):
            await served.request("ask.late", {}, reply_prefix="ask.reply", timeout=0.05)
        with caplog.at_level(logging.ERROR, logger="channels_core"):
            gates["late"].set()
            assert await served.drain(TIMEOUT)
            await asyncio.sleep(0)
        assert "raised after its reply (or its timeout)" in caplog.text
    finally:
        await served.close()
