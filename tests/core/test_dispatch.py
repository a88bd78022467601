"""The Dispatcher: consumers that raise are logged and serving goes on; signals; draining."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from channels_core.dispatch import Dispatcher
from channels_core.routing import Router, route
from channels_core.signals import consumer_finished, consumer_started


@pytest.fixture
def dispatcher_for():
    made = []

    def make(routes, threads=None):
        dispatcher = Dispatcher(Router(routes), threads=threads)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def explode(message):
    raise RuntimeError("kaboom")


async def async_explode(message):
    raise KeyError("missing")


async def test_no_route_returns_false(dispatcher_for):
    dispatcher = dispatcher_for([route("known", explode, path=r"^/a$")])
    assert await dispatcher.dispatch("unknown", {}) is False
    assert await dispatcher.dispatch("known", {"path": "/b"}) is False


@pytest.mark.parametrize("consumer", [explode, async_explode])
async def test_raising_consumer_is_logged_with_channel_and_keys_and_dispatch_goes_on(
    dispatcher_for, caplog, consumer
):
    done = []
    dispatcher = dispatcher_for(
        [route("jobs", consumer, kind=r"^boom$"), route("jobs", lambda m: done.append(m["n"]))]
    )
    with caplog.at_level(logging.ERROR, logger="channels_core.dispatch"):
        assert await dispatcher.dispatch("jobs", {"kind": "boom", "extra": 1}) is True
    assert await dispatcher.dispatch("jobs", {"kind": "ok", "n": 2}) is True
    assert done == [2]
    (record,) = caplog.records
    text = record.getMessage()
    assert "'jobs'" in text
    assert consumer.__qualname__ in text
    assert "['extra', 'kind']" in text
    assert record.exc_info is not None
    assert dispatcher.in_flight == 0


async def test_reraise_lets_the_exception_through(dispatcher_for):
    dispatcher = dispatcher_for([route("jobs", explode)])
    with pytest.raises(RuntimeError, match="kaboom"):
        await dispatcher.dispatch("jobs", {}, reraise=True)


async def test_cancellation_propagates(dispatcher_for):
    started = asyncio.Event()

    async def forever(message):
        started.set()
        await asyncio.Event().wait()

    dispatcher = dispatcher_for([route("jobs", forever)])
    task = asyncio.create_task(dispatcher.dispatch("jobs", {}))
    await asyncio.wait_for(started.wait(), 5)
    assert dispatcher.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dispatcher.in_flight == 0


@pytest.mark.parametrize("fails", [False, True])
async def test_signals_fire_around_sync_consumers_in_their_thread(dispatcher_for, fails):
    events = []

    def consumer(message):
        events.append(("run", threading.current_thread()))
        if fails:
            raise ValueError("bad")

    def on_started(sender, channel, message, **kwargs):
        events.append(("started", sender, channel, message["n"], threading.current_thread()))

    def on_finished(sender, channel, message, error, **kwargs):
        events.append(("finished", sender, channel, type(error), threading.current_thread()))

    consumer_started.connect(on_started)
    consumer_finished.connect(on_finished)
    try:
        dispatcher = dispatcher_for([route("jobs", consumer)])
        await dispatcher.dispatch("jobs", {"n": 1})
    finally:
        consumer_started.disconnect(on_started)
        consumer_finished.disconnect(on_finished)
    thread = events[1][1]
    assert thread is not threading.main_thread()
    assert events == [
        ("started", consumer, "jobs", 1, thread),
        ("run", thread),
        ("finished", consumer, "jobs", ValueError if fails else type(None), thread),
    ]


async def test_signals_fire_around_async_consumers_on_the_loop(dispatcher_for):
    events = []

    async def consumer(message):
        events.append("run")

    def on_started(sender, **kwargs):
        events.append(("started", threading.current_thread()))

    def on_finished(sender, error, **kwargs):
        events.append(("finished", error))

    consumer_started.connect(on_started)
    consumer_finished.connect(on_finished)
    try:
        await dispatcher_for([route("jobs", consumer)]).dispatch("jobs", {})
    finally:
        consumer_started.disconnect(on_started)
        consumer_finished.disconnect(on_finished)
    assert events == [("started", threading.main_thread()), "run", ("finished", None)]


async def test_drain_waits_for_running_consumers(dispatcher_for):
    release = threading.Event()
    entered = threading.Event()

    def slow(message):
        entered.set()
        release.wait(10)

    dispatcher = dispatcher_for([route("jobs", slow)])
    assert await dispatcher.drain(0.01) is True
    task = asyncio.create_task(dispatcher.dispatch("jobs", {}))
    assert await asyncio.to_thread(entered.wait, 5)
    assert dispatcher.in_flight == 1
    assert await dispatcher.drain(0.01) is False
    release.set()
    assert await dispatcher.drain(10) is True
    assert dispatcher.in_flight == 0
    await task
