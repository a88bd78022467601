"""The host's counters (``host.counters``), the kernel side of channels-metrics, driven
directly on a real memory layer and real routing, in-process and in worker mode."""

from __future__ import annotations

import asyncio

import pytest
from django.test import override_settings

from channels_core import Channel, route
from channels_core.counters import CountersSnapshot, reply_family
from channels_core.dispatch import TIMING_BUCKETS, Timing
from channels_core.exceptions import EventRefused
from channels_core.host import Host
from channels_core.plugins import Registry
from channels_core.settings import get_settings

TIMEOUT = 5


async def answer(message):
    """Answers on its reply channel."""
    await Channel(message.content["reply_channel"]).send({"answer": 1})


def sync_consumer(message):
    """A sync consumer, run in the thread pool."""


def layers(**config):
    routing = [route("probe.ask", answer), route("probe.sync", sync_consumer)]
    return {"default": {"BACKEND": "memory", "ROUTING": routing, "CONFIG": config}}


def host(mode: str = "inprocess") -> Host:
    return Host(get_settings(), Registry.from_plugins({}), mode=mode)


def test_reply_family_is_the_prefix_a_reply_channel_was_opened_with():
    assert reply_family("http.response.AbCd-_12!x1y2") == "http.response"
    assert reply_family("lineecho.send.Zz!a") == "lineecho.send"


def test_timing_counts_each_duration_in_its_bucket():
    timing = Timing()
    for seconds in (0.00005, 0.0001, 0.0002, 3.0, 60.0):
        timing.observe(seconds)
    assert len(timing.counts) == len(TIMING_BUCKETS) + 1
    assert timing.counts[0] == 2  # at most 100 µs, the bound included (Prometheus's "le")
    assert timing.counts[1] == 1
    assert timing.counts[TIMING_BUCKETS.index(5.0)] == 1
    assert timing.counts[-1] == 1  # above every bound
    assert timing.count == 5
    assert timing.total == pytest.approx(63.0003)
    copied = timing.copy()
    timing.observe(1.0)
    assert copied.count == 5


@override_settings(CHANNEL_LAYERS=layers())
async def test_the_host_counts_reply_channels_and_events():
    served = host()
    try:
        assert served.counters.snapshot() == CountersSnapshot()
        name = served.open_reply("probe.send", lambda content: None)
        served.open_reply("probe.send", lambda content: None)
        assert await served.emit("probe.ask", {"reply_channel": name}) is True
        assert await served.emit("probe.nowhere", {}) is False  # unrouted still counts
        served.close_reply(name)
        served.close_reply(name)  # closing twice counts once
        snapshot = served.counters.snapshot()
        assert snapshot.opened == {"probe.send": 2}
        assert snapshot.closed == {"probe.send": 1}
        assert snapshot.emitted == {"probe.ask": 1, "probe.nowhere": 1}
        # Not observed: no replies counted, nothing timed.
        assert snapshot.replies == {}
        assert snapshot.consumers == {}
        assert snapshot.layer_send is None
        assert not served.counters.observed
        assert (snapshot.in_flight, snapshot.draining) == (0, False)
        # A snapshot is a copy.
        await served.emit("probe.ask", {"reply_channel": name})
        assert snapshot.emitted["probe.ask"] == 1
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_observed_the_host_counts_replies_and_times_consumers_and_sends():
    served = host()
    got = asyncio.get_running_loop().create_future()

    async def handler(content):
        got.set_result(content)

    try:
        served.counters.observe()
        served.counters.observe()  # once is enough; again changes nothing
        assert served.counters.observed
        plain = served.open_reply("probe.send", lambda content: None)
        spawned = served.open_reply("probe.other", handler)
        for _ in range(3):
            await served.emit("probe.ask", {"reply_channel": plain})
        await served.emit("probe.sync", {})
        await served.emit("probe.ask", {"reply_channel": spawned})
        await asyncio.wait_for(got, TIMEOUT)
        await served.send("probe.layer", {})
        assert await served.receive("probe.layer") == {}
        snapshot = served.counters.snapshot()
        assert snapshot.replies == {"probe.send": 3, "probe.other": 1}
        assert snapshot.received == {"probe.layer": 1}
        assert {name: timing.count for name, timing in snapshot.consumers.items()} == {
            f"{__name__}.answer": 4,
            f"{__name__}.sync_consumer": 1,
        }
        assert snapshot.consumers[f"{__name__}.answer"].total > 0
        assert snapshot.layer_send is not None
        assert snapshot.layer_send.count == 1
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers(capacity=1))
async def test_refusals_are_counted_by_channel():
    served = host(mode="worker")
    try:
        served.counters.observe()
        assert await served.emit("probe.ask", {}) is True  # on the layer
        with pytest.raises(EventRefused):
            await served.emit("probe.ask", {})
        with pytest.raises(EventRefused):
            await served.send("probe.ask", {})
        snapshot = served.counters.snapshot()
        assert snapshot.refused == {"probe.ask": 2}
        assert snapshot.emitted == {"probe.ask": 2}
        assert snapshot.layer_send.count == 3  # refused sends are timed too
        stats = await served.counters.layer_stats()
        assert (stats.pending, stats.full_count) == (1, 2)
    finally:
        await served.close()


@override_settings(CHANNEL_LAYERS=layers())
async def test_draining_shows_in_the_snapshot():
    served = host()
    try:
        assert await served.drain(TIMEOUT)
        assert served.counters.snapshot().draining is True
    finally:
        await served.close()
