"""``ProtocolServer.spawn``: coroutines spawned together share a task while they do not wait.

Each must still behave as if it had a task of its own: its own context, the same current task
for its whole life (so ``asyncio.timeout`` works), no waiting for another spawned coroutine,
its failure logged, and cancellation (or closing, if it never started) when the server stops.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from channels_core.plugins import Registry
from channels_core.server import ProtocolServer
from channels_core.settings import parse_settings

TIMEOUT = 5
POLL = 0.005


seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


async def until(condition) -> None:
    """Let the loop run until ``condition()`` holds; fail after TIMEOUT seconds."""
    for _ in range(int(TIMEOUT / POLL)):
        if condition():
            return
        await asyncio.sleep(POLL)
    raise AssertionError(f"Still not true after {TIMEOUT} s.")


async def build_server() -> ProtocolServer:
    """A real server object on the running loop: no reactor, no listeners, worker mode."""
    settings = parse_settings({"default": {"BACKEND": "memory"}}, {"MODE": "worker"})
    return ProtocolServer(settings, Registry.from_plugins({}), [])


async def test_spawned_coroutines_run_in_order_each_in_its_own_context():
    server = await build_server()
    events = []
    release = asyncio.Event()

    async def quick(name):
        events.append((name, seen.get()))
        seen.set(name)

    async def waits(name):
        events.append((name, seen.get()))
        seen.set(name)
        task = asyncio.current_task()
        await release.wait()
        events.append((f"{name} resumed", seen.get(), asyncio.current_task() is task))

    for coroutine in (quick("a"), waits("b"), quick("c"), waits("d"), quick("e")):
        server.spawn(coroutine)
    # Neither "b" nor "d" waiting holds up the coroutines spawned after them.
    await until(lambda: len(events) == 5)
    assert events == [
        ("a", "unset"),
        ("b", "unset"),
        ("c", "unset"),
        ("d", "unset"),
        ("e", "unset"),
    ]
    release.set()
    await until(lambda: len(events) == 7)
    assert sorted(events[5:]) == [("b resumed", "b", True), ("d resumed", "d", True)]
    assert seen.get() == "unset"
    await server.stop()


async def test_a_timeout_inside_a_spawned_coroutine_times_out_that_coroutine_only():
    server = await build_server()
    done = asyncio.get_running_loop().create_future()

    async def times_out():
        try:
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()
        except TimeoutError:
            done.set_result("timed out")

    async def after():
        return None

    server.spawn(times_out())
    server.spawn(after())
    assert await asyncio.wait_for(done, TIMEOUT) == "timed out"
    await server.stop()


async def test_failures_are_logged_and_the_others_still_run(caplog):
    server = await build_server()
    ran = []
    proceed = asyncio.Event()

    async def fails_at_once():
        raise ValueError("at once")

    async def fails_later():
        await proceed.wait()
        raise KeyError("later")

    async def cancelled_itself():
        raise asyncio.CancelledError

    async def works():
        ran.append("works")

    with caplog.at_level(logging.ERROR, logger="channels_core.server"):
        for coroutine in (fails_at_once(), fails_later(), cancelled_itself(), works()):
            server.spawn(coroutine)
        await until(lambda: ran)
        proceed.set()
        await until(lambda: len(caplog.records) == 2)
    assert [record.getMessage() for record in caplog.records] == ["Emitting an event failed."] * 2
    assert [type(record.exc_info[1]) for record in caplog.records] == [ValueError, KeyError]
    await server.stop()


async def test_stop_cancels_the_waiting_and_closes_the_never_started():
    server = await build_server()
    started = asyncio.Event()
    outcome = []

    async def waits():
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async def never_started():
        outcome.append("started anyway")

    server.spawn(waits())
    await asyncio.wait_for(started.wait(), TIMEOUT)
    # Spawned but not yet started when the server stops: closed, never run nor left unawaited
    # (pytest turns the "never awaited" warning into an error).
    server.spawn(never_started())
    await server.stop()
    await until(lambda: outcome)
    assert outcome == ["cancelled"]
