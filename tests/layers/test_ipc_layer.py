"""The IPC layer in one process: the conformance suite, its options and its bad input."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import warnings

import lmdb
import pytest
from django.test import override_settings

from channels_core.exceptions import (
    ImproperlyConfigured,
    LayerClosed,
    LayerUnavailable,
    MessageTooLarge,
)
from channels_core.layers import build_layer, resolve_backend
from channels_core.serialization import unpack
from channels_core.testing.conformance import LayerConformance, fresh
from channels_ipc import IPCChannelLayer
from channels_ipc.layer import default_path

BOUND = 5.0


class TestIPCLayerConformance(LayerConformance):
    """The shared layer contract, against the IPC layer in a fresh directory per test."""

    @pytest.fixture
    def make_layer(self, tmp_path):
        def make(**config):
            return IPCChannelLayer(path=tmp_path / "ipc", **config)

        return make


def test_ipc_is_the_registered_ipc_backend():
    assert resolve_backend("ipc") is IPCChannelLayer


@pytest.fixture
async def layer(tmp_path):
    layer = IPCChannelLayer(path=tmp_path / "ipc")
    yield layer
    await layer.close()


async def test_layers_on_one_path_share_channels_and_groups(tmp_path):
    # Two layers stand for two processes configured alike (they share one store handle).
    first, second = IPCChannelLayer(path=tmp_path), IPCChannelLayer(path=tmp_path)
    channel, group, reply = fresh("shared"), fresh("group"), await first.new_channel()
    await first.send(channel, {"n": 1})
    assert await asyncio.wait_for(second.receive(channel), BOUND) == {"n": 1}
    await second.group_add(group, reply)
    await second.group_send(group, {"n": 2})
    assert await asyncio.wait_for(first.receive_prefix(first.process_prefix()), BOUND) == (
        reply,
        {"n": 2},
    )
    waiting = asyncio.ensure_future(second.receive(channel))
    await asyncio.sleep(0.05)
    await first.close()
    # Closing one leaves the store open for the other.
    await second.send(channel, {"n": 3})
    assert await asyncio.wait_for(waiting, BOUND) == {"n": 3}
    await second.close()


async def test_layers_on_different_paths_do_not_see_each_other(tmp_path):
    first = IPCChannelLayer(path=tmp_path / "one")
    second = IPCChannelLayer(path=tmp_path / "two")
    channel, group = fresh("apart"), fresh("group")
    await first.group_add(group, channel)
    await first.send(channel, {"n": 1})
    await second.group_send(group, {"n": 2})
    assert (await second.stats()).pending == 0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(second.receive(channel), 0.2)
    assert await first.receive(channel) == {"n": 1}
    await first.close()
    await second.close()


def test_the_default_path_is_per_user_and_per_django_project(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysite.settings")
    base = tmp_path / f"channels-ipc-{os.getuid()}"
    assert default_path() == base / "mysite.settings"
    assert default_path("chat") == base / "chat"
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    assert default_path() == base / "default"
    layer = IPCChannelLayer(name="chat")
    assert layer.path == base / "chat"
    assert (base / "chat" / "data.mdb").exists()
    asyncio.run(layer.close())


def test_the_layer_is_built_from_channel_layers_settings(tmp_path):
    config = {"path": str(tmp_path), "capacity": 7, "map_size": 1 << 24}
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "ipc", "CONFIG": config}}):
        layer = build_layer("default")
    assert isinstance(layer, IPCChannelLayer)
    assert (layer.path, layer.capacity) == (tmp_path, 7)
    asyncio.run(layer.close())


@pytest.mark.parametrize(
    ("config", "match"),
    [
        pytest.param({"path": "", "name": None}, "'path' is ''", id="empty-path"),
        pytest.param({"path": 5}, "'path' is 5", id="path-int"),
        pytest.param({"name": "my site"}, "'name' is 'my site'", id="bad-name"),
        pytest.param({"path": "/tmp/x", "name": "x"}, "both set", id="path-and-name"),
        pytest.param({"map_size": 0}, "'map_size' is 0", id="map-size-0"),
        pytest.param({"path": "/proc/self"}, "not writable", id="unwritable"),
        pytest.param({"path": "/proc/no-such/ipc"}, "cannot create", id="uncreatable"),
    ],
)
def test_bad_ipc_options_raise_improperly_configured(config, match):
    with pytest.raises(ImproperlyConfigured, match=match):
        IPCChannelLayer(**config)


def test_a_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ImproperlyConfigured, match="which is a file"):
        IPCChannelLayer(path=tmp_path / "file")
    with pytest.raises(ImproperlyConfigured, match="cannot create"):
        IPCChannelLayer(path=tmp_path / "file" / "below")


def test_a_damaged_store_file_is_refused_with_its_name(tmp_path):
    (tmp_path / "data.mdb").write_bytes(b"\x00garbage" * 4096)
    with pytest.raises(ImproperlyConfigured, match=r"data\.mdb.*not a channels-ipc store"):
        IPCChannelLayer(path=tmp_path)


def test_an_lmdb_store_of_another_program_is_refused(tmp_path):
    with lmdb.open(str(tmp_path)) as env, env.begin(write=True) as txn:
        txn.put(b"someone", b"else's data")
    with pytest.raises(ImproperlyConfigured, match="belongs to another program"):
        IPCChannelLayer(path=tmp_path)
    with lmdb.open(str(tmp_path)) as env, env.begin() as txn:
        assert txn.get(b"someone") == b"else's data"


def test_a_store_of_the_previous_format_is_refused_saying_what_to_remove(tmp_path):
    # channels-ipc/2 kept no presence, history or epoch: a process of that version would
    # send to groups without keeping their history.
    with lmdb.open(str(tmp_path)) as env, env.begin(write=True) as txn:
        txn.put(b"channels-ipc", b"channels-ipc/2")
    with pytest.raises(ImproperlyConfigured, match=r"another version.*remove its data\.mdb"):
        IPCChannelLayer(path=tmp_path)


async def test_an_oversized_message_is_refused_at_send_naming_the_limit(tmp_path):
    layer = IPCChannelLayer(path=tmp_path, max_message_size=1000)
    with pytest.raises(MessageTooLarge, match="limit of 1000 bytes"):
        await layer.send(fresh("big"), {"blob": b"x" * 2000})
    assert (await layer.stats()).pending == 0
    await layer.close()


async def test_a_layer_used_in_a_forked_child_says_so(layer):
    channel = fresh("forked")
    await layer.send(channel, {"n": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, on 3.12+
        pid = os.fork()
    if pid == 0:
        try:
            asyncio.run(layer.send(channel, {"n": 2}))
        except LayerClosed as error:
            os._exit(0 if "forked" in str(error) else 2)
        os._exit(1)
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert await layer.receive(channel) == {"n": 1}
    assert (await layer.stats(channel)).pending == 0


async def test_receives_on_two_running_loops_are_refused(layer):
    channel = fresh("loops")
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.02)
    with pytest.raises(RuntimeError, match="one loop at a time"):
        await asyncio.to_thread(asyncio.run, layer.receive(channel))
    await layer.send(channel, {"n": 1})
    assert await asyncio.wait_for(waiting, BOUND) == {"n": 1}


async def test_a_send_from_another_thread_wakes_a_receive_here(layer):
    channel, reply = fresh("threads"), await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    waiting_reply = asyncio.ensure_future(layer.receive(reply))
    await asyncio.sleep(0.02)
    await asyncio.to_thread(asyncio.run, layer.send(channel, {"from": "thread"}))
    await asyncio.to_thread(asyncio.run, layer.send(reply, {"from": "thread"}))
    assert await asyncio.wait_for(waiting, BOUND) == {"from": "thread"}
    assert await asyncio.wait_for(waiting_reply, BOUND) == {"from": "thread"}


async def test_a_doorbell_that_overflowed_still_wakes_every_waiting_receive(tmp_path):
    # While this loop does not read its FIFO, another layer's sends fill it (each rings one
    # line) and the line for the second channel is dropped: reading a full FIFO wakes all.
    receiver = IPCChannelLayer(path=tmp_path)
    sender = IPCChannelLayer(path=tmp_path, capacity=20_000)
    busy, quiet = fresh("busy"), fresh("quiet")
    waiting_busy = asyncio.ensure_future(receiver.receive(busy))
    waiting_quiet = asyncio.ensure_future(receiver.receive(quiet))
    await asyncio.sleep(0.02)
    line = len(busy) + 1
    for n in range(2 * 65536 // line):
        await sender.send(busy, {"n": n})  # never suspends: the FIFO is not read meanwhile
    await sender.send(quiet, {"n": 0})
    assert await asyncio.wait_for(waiting_quiet, BOUND) == {"n": 0}
    assert await asyncio.wait_for(waiting_busy, BOUND) == {"n": 0}
    await sender.close()
    await receiver.close()


async def test_a_full_store_refuses_sends_naming_map_size_and_recovers(tmp_path):
    layer = IPCChannelLayer(path=tmp_path, map_size=1 << 20, capacity=1000)
    channel = fresh("bulky")

    async def fill() -> None:
        for n in range(100):
            await layer.send(channel, {"n": n, "blob": b"x" * 100_000})

    with pytest.raises(LayerUnavailable, match="map_size"):
        await fill()
    sent = (await layer.stats(channel)).pending
    assert 0 < sent < 100
    assert [(await layer.receive(channel))["n"] for _ in range(sent)] == list(range(sent))
    await layer.send(channel, {"n": sent})
    assert (await layer.receive(channel))["n"] == sent
    await layer.close()


async def test_group_sends_past_one_members_capacity_skip_only_it_and_keep_counts(tmp_path):
    # Four group sends, nothing received. The owner's queue holds fewer messages than the
    # capacities for the first two: one count for the owner; the third finds "small" may be
    # full, counts the owner's channels one by one from then on, and goes member by member.
    # "lone" (another owner's only channel) is full at the second, when counting starts.
    layer = IPCChannelLayer(path=tmp_path, capacity=5, channel_capacity={"*!small": 2, "*!lone": 1})
    group, prefix = fresh("group"), layer.process_prefix()
    small, big, other = f"{prefix}small", f"{prefix}big", fresh("normal")
    lone = f"{fresh('other')}!lone"
    for channel in (small, big, other, lone):
        await layer.group_add(group, channel)
    for n in range(4):
        await layer.group_send(group, {"n": n})
        assert layer._store.verify() == []
    assert (await layer.stats(lone)).full_count == 3
    assert (await layer.stats(small)).full_count == 2
    assert (await layer.stats(big)).full_count == 0
    assert (await layer.stats()).pending == 2 + 4 + 4 + 1
    assert [(await layer.receive(small))["n"] for _ in range(2)] == [0, 1]
    assert [(await layer.receive(big))["n"] for _ in range(4)] == [0, 1, 2, 3]
    assert [(await layer.receive(other))["n"] for _ in range(4)] == [0, 1, 2, 3]
    await layer.group_send(group, {"n": 4})
    assert (await layer.receive(small))["n"] == 4
    assert (await layer.stats()).pending == 2 + 1
    assert layer._store.verify() == []
    await layer.close()


async def test_a_take_cut_short_by_its_batch_limit_counts_down_what_it_took(tmp_path):
    # Each group send stores one message for three channels: a take limited to 2 deliveries
    # stops after one message and must count down exactly what it removed.
    layer = IPCChannelLayer(path=tmp_path)
    group, prefix = fresh("group"), layer.process_prefix()
    channels = [f"{prefix}{n}" for n in range(3)]
    for channel in channels:
        await layer.group_add(group, channel)
    for n in range(3):
        await layer.group_send(group, {"n": n})
    with layer._lock:
        taken = layer._store.take_owner(prefix, time.time(), 2, None)
    assert [(names, unpack(data)) for names, _, data in taken] == [(channels, {"n": 0})]
    assert layer._store.verify() == []
    assert (await layer.stats()).pending == 6
    with layer._lock:
        taken = layer._store.take_owner(prefix, time.time(), 10, None)
    assert [unpack(data) for _, _, data in taken] == [{"n": 1}, {"n": 2}]
    assert layer._store.verify() == []
    with layer._store.env.begin() as txn:
        assert txn.stat(layer._store.counts)["entries"] == 0
    await layer.close()


async def test_a_group_send_reads_the_members_again_after_a_change(tmp_path):
    # A process keeps the members it read; adding, discarding and expiry must all show.
    layer = IPCChannelLayer(path=tmp_path, group_expiry=0.3)
    group, first, second = fresh("group"), fresh("first"), fresh("second")
    await layer.group_add(group, first)
    await layer.group_send(group, {"n": 0})
    await layer.group_add(group, second)
    await layer.group_send(group, {"n": 1})
    await layer.group_discard(group, first)
    await layer.group_send(group, {"n": 2})
    assert [(await layer.receive(first))["n"] for _ in range(2)] == [0, 1]
    assert [(await layer.receive(second))["n"] for _ in range(2)] == [1, 2]
    await asyncio.sleep(0.4)
    await layer.group_send(group, {"n": 3})
    assert (await layer.stats()).pending == 0
    assert await layer.group_members(group) == []
    await layer.close()
