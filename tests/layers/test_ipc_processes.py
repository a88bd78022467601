"""The IPC layer across real processes: delivery, groups, capacity, expiry, SIGTERM, SIGKILL.

Each test starts real interpreters running ``ipc_child.py`` beside this file on one store
directory, and reads what they received from their output (one JSON value a line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from channels_core.exceptions import ChannelFull, ForeignProcessChannel
from channels_core.testing.conformance import fresh
from channels_core.testing.processes import RunningProcess, start_process
from channels_ipc import IPCChannelLayer

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("ipc_child.py")
BOUND = 30.0


def child(*args: object) -> RunningProcess:
    """Start ``ipc_child.py`` with *args* under this interpreter."""
    return start_process([sys.executable, CHILD, *map(str, args)])


def events(process: RunningProcess) -> list:
    """The JSON values the child printed, in order (other lines, such as errors, skipped)."""
    values = []
    for line in process.lines:
        with contextlib.suppress(ValueError):
            values.append(json.loads(line))
    return values


def pairs(process: RunningProcess) -> list[tuple]:
    """The ``[a, b, ...]`` lists the child printed, as tuples."""
    return [tuple(value) for value in events(process) if isinstance(value, list)]


async def receive_all(layer: IPCChannelLayer, channel: str) -> list[dict]:
    """Every message waiting on *channel* now."""
    messages = []
    while (await layer.stats(channel)).pending:
        messages.append(await asyncio.wait_for(layer.receive(channel), BOUND))
    return messages


async def send_retrying(layer: IPCChannelLayer, channel: str, message: dict) -> None:
    for _attempt in range(30_000):
        try:
            await layer.send(channel, message)
            return
        except ChannelFull:
            await asyncio.sleep(0.001)
    pytest.fail(f"{channel!r} stayed full although a receiver was draining it.")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ipc"


async def test_senders_and_receivers_in_several_processes_deliver_each_message_once_in_order(
    path,
):
    senders, per_sender, receivers = 3, 1000, 3
    layer = IPCChannelLayer(path=path)
    with contextlib.ExitStack() as stack:
        receiving = [stack.enter_context(child("receive", path, "work")) for _ in range(receivers)]
        for process in receiving:
            await asyncio.to_thread(process.wait_for_line, "ready", BOUND)
        sending = [
            stack.enter_context(child("send", path, "work", sender, per_sender, "capacity=20"))
            for sender in range(senders)
        ]
        for process in sending:
            assert await asyncio.to_thread(process.wait, BOUND) == 0, process.output
        for _ in range(receivers):
            await layer.send("work", {"stop": True})
        for process in receiving:
            assert await asyncio.to_thread(process.wait, BOUND) == 0, process.output
    received = [pairs(process) for process in receiving]
    everything = [pair for got in received for pair in got]
    expected = [(sender, n) for sender in range(senders) for n in range(per_sender)]
    assert Counter(everything) == Counter(expected), "lost or duplicated messages"
    for got in received:
        for sender in range(senders):
            ns = [n for s, n in got if s == sender]
            assert ns == sorted(ns), "one sender's messages reached a receiver out of order"
    assert sum(1 for got in received if got) > 1, "one receiver took everything"
    assert (await layer.stats("work")).pending == 0
    assert layer._store.verify() == []
    await layer.close()


async def test_group_sends_reach_members_in_other_processes(path):
    layer = IPCChannelLayer(path=path)
    with (
        child("members", path, "room", 2, 20) as first,
        child("members", path, "room", 2, 20) as second,
    ):
        names = []
        for process in (first, second):
            await asyncio.to_thread(process.wait_for_line, "ready", BOUND)
            names.extend(events(process)[0]["names"])
        assert sorted(await layer.group_members("room")) == sorted(names)
        for n in range(20):
            await layer.group_send("room", {"n": n})
        for process in (first, second):
            assert await asyncio.to_thread(process.wait, BOUND) == 0, process.output
    for process in (first, second):
        got = pairs(process)
        for name in {channel for channel, _ in got}:
            assert [n for channel, n in got if channel == name] == list(range(20))
        assert len(got) == 40
    await layer.close()


async def test_a_receive_on_another_processs_channel_raises_naming_its_owner(path):
    layer = IPCChannelLayer(path=path)
    with child("members", path, "room", 1, 1) as other:
        await asyncio.to_thread(other.wait_for_line, "ready", BOUND)
        (name,) = events(other)[0]["names"]
        owner = name[: name.index("!") + 1]
        # Only the child can receive it: here the receive raises at once, naming both.
        with pytest.raises(ForeignProcessChannel) as raised:
            await asyncio.wait_for(layer.receive(name), BOUND)
        assert (raised.value.channel, raised.value.prefix) == (name, owner)
        assert f"Channel {name!r} is process-specific" in str(raised.value)
        assert f"the process prefix {owner!r}" in str(raised.value)
        # Sending to it from here is fine: the owner gets it.
        await layer.send(name, {"n": 7})
        assert await asyncio.to_thread(other.wait, BOUND) == 0, other.output
    assert pairs(other) == [(name, 7)]
    await layer.close()


async def test_a_group_send_sees_members_other_processes_added_and_discarded_since(path):
    # This process keeps the members it read for the group's version; other processes'
    # changes give the group a new version.
    layer = IPCChannelLayer(path=path)
    mine = await layer.new_channel()
    await layer.group_add("room", mine)
    await layer.group_send("room", {"n": 0})
    with child("members", path, "room", 2, 1) as other:
        await asyncio.to_thread(other.wait_for_line, "ready", BOUND)
        await layer.group_send("room", {"n": 1})
        assert await asyncio.to_thread(other.wait, BOUND) == 0, other.output
    assert [n for _, n in pairs(other)] == [1, 1]
    with child("discard", path, "room", mine) as discarder:
        assert await asyncio.to_thread(discarder.wait, BOUND) == 0, discarder.output
    await layer.group_send("room", {"n": 2})
    assert [await layer.receive(mine) for _ in range(2)] == [{"n": 0}, {"n": 1}]
    assert (await layer.stats(mine)).pending == 0
    assert layer._store.verify() == []
    await layer.close()


async def test_sends_from_another_process_reach_this_process_channels(path):
    layer = IPCChannelLayer(path=path)
    first, second = await layer.new_channel(), await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive_prefix(layer.process_prefix()))
    await asyncio.sleep(0.05)
    with child("send", path, first, 0, 3) as one, child("send", path, second, 1, 3) as two:
        assert await asyncio.to_thread(one.wait, BOUND) == 0, one.output
        assert await asyncio.to_thread(two.wait, BOUND) == 0, two.output
    got = [await asyncio.wait_for(waiting, BOUND)]
    got += [await asyncio.wait_for(layer.receive_prefix(layer.process_prefix()), BOUND)]
    got += [(second, await asyncio.wait_for(layer.receive(second), BOUND))]
    while (await layer.stats()).pending:
        got.append(await asyncio.wait_for(layer.receive_prefix(layer.process_prefix()), BOUND))
    for channel, sender in ((first, 0), (second, 1)):
        assert [m for c, m in got if c == channel] == [{"sender": sender, "n": n} for n in range(3)]
    await layer.close()


async def test_capacity_counts_the_messages_other_processes_sent(path):
    with child("send", path, "narrow", 0, 5, "capacity=5") as sender:
        assert await asyncio.to_thread(sender.wait, BOUND) == 0, sender.output
    layer = IPCChannelLayer(path=path, capacity=5)
    with pytest.raises(ChannelFull, match="narrow"):
        await layer.send("narrow", {"sender": 1, "n": 0})
    stats = await layer.stats("narrow")
    assert (stats.pending, stats.full_count) == (5, 1)
    assert stats.oldest_age > 0
    assert (await layer.stats()).pending == 5
    assert await layer.receive("narrow") == {"sender": 0, "n": 0}
    await layer.send("narrow", {"sender": 1, "n": 0})
    with child("send", path, "narrow", 2, 1, "capacity=5") as late:
        # The other process sees the channel full as well, and waits: its send is refused.
        await asyncio.to_thread(late.wait_for_line, "ready", BOUND)
        await asyncio.sleep(0.3)
        assert (await layer.stats("narrow")).full_count > 1
        assert await layer.receive("narrow") == {"sender": 0, "n": 1}
        assert await asyncio.to_thread(late.wait, BOUND) == 0, late.output
    rest = [(m["sender"], m["n"]) for m in await receive_all(layer, "narrow")]
    assert rest == [(0, 2), (0, 3), (0, 4), (1, 0), (2, 0)]
    await layer.close()


async def test_expiry_applies_to_messages_other_processes_sent(path):
    with child("send", path, "brief", 0, 3, "expiry=0.2") as sender:
        assert await asyncio.to_thread(sender.wait, BOUND) == 0, sender.output
    layer = IPCChannelLayer(path=path)
    await asyncio.sleep(0.35)
    assert (await layer.stats("brief")).pending == 0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive("brief"), 0.2)
    with child("send", path, "brief", 1, 1) as sender:
        assert await asyncio.to_thread(sender.wait, BOUND) == 0, sender.output
    assert await asyncio.wait_for(layer.receive("brief"), BOUND) == {"sender": 1, "n": 0}
    await layer.close()


async def test_a_worker_closed_by_sigterm_loses_no_message_of_a_shared_channel(path):
    total = 400
    layer = IPCChannelLayer(path=path, capacity=total)
    with child("serve", path, "jobs") as worker:
        await asyncio.to_thread(worker.wait_for_line, "ready", BOUND)
        for n in range(total):
            await layer.send("jobs", {"sender": 0, "n": n})
            if n % 10 == 9:
                await asyncio.sleep(0.001)
            if n == total // 2:
                worker.popen.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, BOUND) == 0, worker.output
    assert events(worker)[-1] == "closed"
    by_worker = [n for _, n in pairs(worker)]
    left = [message["n"] for message in await receive_all(layer, "jobs")]
    assert by_worker, "the worker received nothing before SIGTERM"
    assert left, "SIGTERM came after every message was taken"
    assert sorted(by_worker + left) == list(range(total)), "lost or duplicated messages"
    await layer.close()


async def test_a_process_killed_holding_the_write_lock_does_not_block_the_others(path):
    layer = IPCChannelLayer(path=path)
    with child("hold", path) as holder:
        await asyncio.to_thread(holder.wait_for_line, "holding", BOUND)
        holder.popen.kill()
        await asyncio.to_thread(holder.popen.wait, BOUND)
    # The next writer recovers the dead holder's lock; its transaction never happened.
    await asyncio.wait_for(asyncio.to_thread(asyncio.run, layer.send("after", {"n": 1})), BOUND)
    assert await asyncio.wait_for(layer.receive("after"), BOUND) == {"n": 1}
    with layer._store.env.begin() as txn:
        assert txn.get(b"held") is None
    assert layer._store.verify() == []
    await layer.close()


async def test_processes_killed_at_random_moments_leave_the_layer_usable_and_consistent(path):
    # Each round, a child sends, group-sends (keeping history), adds present members and
    # discards them, and receives as fast as it can, and is killed with SIGKILL after a
    # random time, while this process keeps feeding it and draining what it sends.
    rounds = 8
    seed = int.from_bytes(os.urandom(4), "big")
    chance = random.Random(seed)
    layer = IPCChannelLayer(path=path, capacity=50, history={"hammer.group": {"size": 20}})
    fed: list[int] = []
    out: list[tuple[int, int]] = []
    taken_by_children: list[int] = []

    async def feed() -> None:
        n = 0
        while True:
            await send_retrying(layer, "hammer.in", {"sender": -1, "n": n})
            fed.append(n)
            n += 1

    async def drain() -> None:
        while True:
            message = await layer.receive("hammer.out")
            out.append((message["sender"], message["n"]))

    tasks = [asyncio.ensure_future(feed()), asyncio.ensure_future(drain())]
    try:
        for round_number in range(rounds):
            with child("hammer", path, round_number) as hammer:
                # Killed at a random moment once it works: after its first receive, so that
                # how much it receives does not depend on how soon a loaded machine runs it.
                await asyncio.to_thread(hammer.wait_for_line, r'^\["in"', BOUND)
                await asyncio.sleep(chance.uniform(0.05, 0.4))
                hammer.popen.send_signal(signal.SIGKILL)
                assert await asyncio.to_thread(hammer.popen.wait, BOUND) == -signal.SIGKILL
            taken_by_children.extend(n for tag, _, n in pairs(hammer) if tag == "in")
            # The survivor goes on: a round trip on a fresh channel, and a group send.
            channel, group = fresh("survivor"), fresh("group")
            await asyncio.wait_for(layer.send(channel, {"round": round_number}), BOUND)
            assert await asyncio.wait_for(layer.receive(channel), BOUND) == {"round": round_number}
            await layer.group_add(group, channel)
            await layer.group_send(group, {"round": round_number})
            assert await asyncio.wait_for(layer.receive(channel), BOUND) == {"round": round_number}
        await asyncio.sleep(0.2)  # the drain takes what the last child sent
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    left = [message["n"] for message in await receive_all(layer, "hammer.in")]
    out.extend((m["sender"], m["n"]) for m in await receive_all(layer, "hammer.out"))

    context = f"(random seed {seed})"
    assert len(taken_by_children) > rounds, f"the children hardly received anything {context}"
    delivered = taken_by_children + left
    assert len(delivered) == len(set(delivered)), f"a message was delivered twice {context}"
    # At most once: only what a child had taken when it was killed (one receive at a time)
    # may be missing.
    missing = set(fed) - set(delivered)
    assert len(missing) <= rounds, f"{len(missing)} messages lost in {rounds} kills {context}"
    for sender in range(rounds):
        ns = [n for s, n in out if s == sender]
        # Each child's sends that committed arrive, all of them and in order.
        assert ns == list(range(len(ns))), f"child {sender}'s messages {context}"
    assert sum(1 for sender in range(rounds) if [s for s, _ in out if s == sender]) == rounds
    assert layer._store.verify() == [], context
    # A child killed between adding its present member and discarding it left the member,
    # but not its presence; the group's history goes on without a gap.
    assert await layer.group_presence("hammer.group") == {}, context
    history = await layer.group_history("hammer.group")
    offsets = [position.offset for position, _ in history.messages]
    last = history.position.offset
    assert offsets == list(range(last - len(offsets) + 1, last + 1)), context
    for sender in range(rounds):
        ns = [content["n"] for _, content in history.messages if content["sender"] == sender]
        assert ns == sorted(ns), context
    # The dead children's doorbells are gone once a sweep (any new layer) has run.
    await IPCChannelLayer(path=path).close()
    assert len(os.listdir(path / "wake")) == 1, os.listdir(path / "wake")
    await layer.close()
