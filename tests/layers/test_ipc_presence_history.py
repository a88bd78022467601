"""Presence and group history on the IPC layer, across real processes.

The children run ``ipc_child.py`` beside this file on one store directory (see
``test_ipc_processes.py``); the conformance suite covers both in one process.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from channels_core.history import Position
from channels_core.serialization import pack
from channels_core.testing.conformance import fresh
from channels_core.testing.processes import RunningProcess, start_process
from channels_ipc import IPCChannelLayer
from channels_ipc.liveness import IDENTITY, is_alive, this_process

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("ipc_child.py")
BOUND = 30.0
HISTORY = {"chat.*": {"size": 10}}


def child(*args: object) -> RunningProcess:
    """Start ``ipc_child.py`` with *args* under this interpreter."""
    return start_process([sys.executable, CHILD, *map(str, args)])


def json_lines(process: RunningProcess) -> list:
    """The JSON values the child printed, in order, skipping its ``ready`` and ``done``."""
    return [json.loads(line) for line in process.lines if line.startswith(("[", "{"))]


def present_in_store(layer: IPCChannelLayer) -> int:
    """How many presence entries the store holds, stale ones included."""
    with layer._store.env.begin() as txn:
        return txn.stat(layer._store.presence)["entries"]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ipc"


async def test_the_members_a_killed_process_made_present_are_gone_with_it(path):
    layer = IPCChannelLayer(path=path, presence_timeout=5)
    group, mine = fresh("room"), fresh("mine")
    await layer.group_add(group, mine, presence={"here": True})
    with child("present", path, group, 3) as present:
        await asyncio.to_thread(present.wait_for_line, "ready", BOUND)
        names = json_lines(present)[0]["names"]
        # Alive in another process: present here, with its info.
        assert await layer.group_presence(group) == {
            mine: {"here": True},
            **{name: {"n": n} for n, name in enumerate(names)},
        }
        present.popen.kill()
        # Not reaped yet, it is a zombie: dead already. No heartbeat to miss: the members go
        # as soon as the kernel has ended the process, well within presence_timeout.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + layer.presence_timeout
        while len(await layer.group_presence(group)) > 1:
            assert loop.time() < deadline, "a killed process's members stayed present"
            await asyncio.sleep(0.01)
        await asyncio.to_thread(present.popen.wait, BOUND)
    assert await layer.group_presence(group) == {mine: {"here": True}}
    # The stale entries were removed; the channels stay members until they expire.
    assert present_in_store(layer) == 1
    assert sorted(await layer.group_members(group)) == sorted([mine, *names])
    # Another process's discard ends this process's presence.
    with child("discard", path, group, mine) as discarder:
        assert await asyncio.to_thread(discarder.wait, BOUND) == 0, discarder.output
    assert await layer.group_presence(group) == {}
    assert layer._store.verify() == []
    await layer.close()


async def test_a_reused_pid_does_not_keep_members_present(path):
    # The identity holds the process's start time: the same pid started at another time is
    # another process, and the member it made present is gone.
    layer = IPCChannelLayer(path=path)
    pid, started, namespace = IDENTITY.unpack(this_process())
    assert is_alive(this_process())
    reused = IDENTITY.pack(pid, started + 1, namespace)
    assert not is_alive(reused)
    # A process of another pid namespace cannot be looked up: kept rather than guessed dead.
    assert is_alive(IDENTITY.pack(1 << 30, 0, namespace + 1))
    group, channel = fresh("room"), fresh("ghost")
    with layer._lock:
        layer._store.group_add(group, channel, 2e9, 100, reused + pack({"n": 1}))
    assert await layer.group_presence(group) == {}
    assert present_in_store(layer) == 0
    await layer.close()


async def test_a_group_send_in_another_process_is_in_the_history_here_at_its_position(path):
    layer = IPCChannelLayer(path=path, history=HISTORY)
    group, member = fresh("chat"), await layer.new_channel()
    await layer.group_add(group, member)
    history = f"history={json.dumps(HISTORY)}"
    with child("group_send", path, group, 3, history) as sender:
        assert await asyncio.to_thread(sender.wait, BOUND) == 0, sender.output
    positions = [Position.of(position) for position in json_lines(sender)]
    assert [position.offset for position in positions] == [1, 2, 3]
    kept = await layer.group_history(group)
    assert kept.messages == [(position, {"n": n}) for n, position in enumerate(positions)]
    assert (kept.complete, kept.position) == (True, positions[-1])
    # The member here got each message with the position the sender was given.
    for n, position in enumerate(positions):
        received = await asyncio.wait_for(layer.receive(member), BOUND)
        assert received == {"n": n, "position": list(position)}
    # A send from here goes on in the same epoch, after the other process's.
    mine = await layer.group_send(group, {"n": 3})
    assert mine == Position(positions[0].epoch, 4)
    after = await layer.group_history(group, since=positions[1])
    assert after.messages == [(positions[2], {"n": 2}), (mine, {"n": 3})]
    assert after.complete
    assert layer._store.verify() == []
    await layer.close()


async def test_a_position_from_a_deleted_store_gives_an_incomplete_history(path):
    group = fresh("chat")
    history = f"history={json.dumps(HISTORY)}"
    with child("group_send", path, group, 2, history) as sender:
        assert await asyncio.to_thread(sender.wait, BOUND) == 0, sender.output
    before = Position.of(json_lines(sender)[-1])
    shutil.rmtree(path)
    layer = IPCChannelLayer(path=path, history=HISTORY)
    lost = await layer.group_history(group, since=before)
    assert (lost.messages, lost.complete, lost.position) == ([], False, None)
    after = await layer.group_send(group, {"n": 0})
    assert after.epoch != before.epoch
    assert after.offset == 1
    since_before = await layer.group_history(group, since=before)
    assert since_before.messages == [(after, {"n": 0})]
    assert not since_before.complete
    await layer.close()


async def test_a_flush_by_another_process_starts_a_new_epoch(path):
    layer = IPCChannelLayer(path=path, history=HISTORY)
    group, channel = fresh("chat"), fresh("member")
    await layer.group_add(group, channel, presence={"n": 1})
    before = await layer.group_send(group, {"n": 0})
    with child("flush", path) as flusher:
        assert await asyncio.to_thread(flusher.wait, BOUND) == 0, flusher.output
    lost = await layer.group_history(group, since=before)
    assert (lost.messages, lost.complete, lost.position) == ([], False, None)
    assert await layer.group_presence(group) == {}
    after = await layer.group_send(group, {"n": 1})
    assert (after.epoch != before.epoch, after.offset) == (True, 1)
    await layer.close()
