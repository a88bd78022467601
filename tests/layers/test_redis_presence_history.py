"""Presence and group history on the Redis layer, beyond the conformance suite: a process
killed with SIGKILL, a Redis restarted without persistence, one round trip per group send,
encryption at rest and the Redis Cluster slots of a group's keys.

Every server is a real ``redis-server`` started here (persistence off); the killed process is
a real Python interpreter running the layer.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from channels_core.exceptions import LayerUnavailable
from channels_core.names import random_suffix
from channels_core.testing.conformance import fresh
from channels_core.testing.processes import start_process
from channels_core.testing.redis import RedisServer, redis_server
from channels_redis import RedisChannelLayer

__all__ = ["redis_server"]  # the fixture, imported for the tests here

BOUND = 15.0
PRESENCE_TIMEOUT = 1.0
# How long past presence_timeout a killed process's members may stay listed: the timeout
# counts from its last renewal, which may have come just before the kill.
MARGIN = 1.0

# A process that adds present members and then blocks in sync code, with no event loop
# running: its heartbeat thread alone keeps them present. Arguments: URL, prefix, group,
# how many members.
CHILD = """
import asyncio, json, sys, time
from channels_redis import RedisChannelLayer

url, prefix, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
layer = RedisChannelLayer(hosts=[url], prefix=prefix, presence_timeout=%r)

async def join():
    names = [await layer.new_channel() for _ in range(count)]
    for n, name in enumerate(names):
        await layer.group_add(group, name, presence={"user": n})
    return names

print(json.dumps(asyncio.run(join())), flush=True)
time.sleep(120)
""" % (PRESENCE_TIMEOUT,)  # noqa: UP031 (the child's source, with braces of its own)


def new_prefix() -> str:
    return f"test.{random_suffix()}:"


async def until_back(call, *args):
    """*call(*args)*, retried while the layer reports its server unavailable (bounded)."""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                return await call(*args)
            except LayerUnavailable:
                await asyncio.sleep(0.05)


async def test_a_killed_process_loses_its_present_members_within_presence_timeout(redis_server):
    prefix, group = new_prefix(), fresh("room")
    layer = RedisChannelLayer(
        hosts=[redis_server], prefix=prefix, presence_timeout=PRESENCE_TIMEOUT
    )
    client = aioredis.Redis.from_url(redis_server)
    try:
        mine = await layer.new_channel()
        await layer.group_add(group, mine, presence={"user": "here"})
        with start_process([sys.executable, "-c", CHILD, redis_server, prefix, group, 3]) as child:
            line = await asyncio.to_thread(child.wait_for_line, r"^\[", BOUND)
            theirs = json.loads(line.string)
            expected = {mine: {"user": "here"}} | {
                name: {"user": n} for n, name in enumerate(theirs)
            }
            assert await layer.group_presence(group) == expected
            # Three times presence_timeout: the child's heartbeat thread renews them while its
            # main thread sleeps in sync code.
            await asyncio.sleep(3 * PRESENCE_TIMEOUT)
            assert await layer.group_presence(group) == expected
            child.popen.send_signal(signal.SIGKILL)
            await asyncio.to_thread(child.wait, BOUND)
            killed_at = time.monotonic()
            while await layer.group_presence(group) != {mine: {"user": "here"}}:
                assert time.monotonic() - killed_at < PRESENCE_TIMEOUT + MARGIN, (
                    "a killed process's members were still present"
                )
                await asyncio.sleep(0.05)
        # Their presence is removed from Redis, not only left out; they are still members
        # until their membership expires.
        assert await client.hkeys(f"{prefix}gp:{{{group}}}") == [mine.encode()]
        assert set(await layer.group_members(group)) == {mine, *theirs}
    finally:
        await client.aclose()
        await layer.close()


async def test_closing_a_layer_ends_its_presence_and_its_heartbeat_thread(redis_server):
    prefix, group = new_prefix(), fresh("room")
    leaving = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
    staying = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
    try:
        channel = await leaving.new_channel()
        await leaving.group_add(group, channel, presence={"user": 1})
        thread = leaving._heartbeat._thread
        assert thread is not None
        assert thread.is_alive()
        assert await staying.group_presence(group) == {channel: {"user": 1}}
        await leaving.close()
        assert not thread.is_alive()
        assert await staying.group_presence(group) == {}
    finally:
        await leaving.close()
        await staying.close()


async def test_a_restarted_redis_is_a_new_epoch_and_says_history_is_incomplete():
    with RedisServer() as server:
        layer = RedisChannelLayer(
            hosts=[server.url], prefix=new_prefix(), history={"chat.*": {"size": 10}}
        )
        try:
            group, member = fresh("chat"), fresh("member")
            await layer.group_add(group, member, presence={"user": 1})
            old = await layer.group_send(group, {"n": 0})
            assert (await layer.group_history(group, since=old)).complete
            server.kill()
            server.start()  # the same port, nothing of what it held
            lost = await until_back(layer.group_history, group, old)
            assert (lost.messages, lost.complete, lost.position) == ([], False, None)
            assert await layer.group_presence(group) == {}
            new = await layer.group_send(group, {"n": 1})
            assert new.epoch != old.epoch
            assert new.offset == 1
            after = await layer.group_history(group, since=old)
            assert (after.messages, after.complete, after.position) == (
                [(new, {"n": 1})],
                False,
                new,
            )
            assert (await layer.group_history(group, since=new)).complete
        finally:
            await layer.close()


async def _commandstats_calls(client: aioredis.Redis, command: str) -> int:
    return (await client.info("commandstats")).get(f"cmdstat_{command}", {}).get("calls", 0)


@pytest.mark.parametrize("history", [True, False], ids=["with-history", "without-history"])
async def test_a_group_send_is_one_evalsha(history):
    with RedisServer(
        extra_args=["--slowlog-log-slower-than", "0", "--slowlog-max-len", "10000"]
    ) as server:
        layer = RedisChannelLayer(
            hosts=[server.url],
            prefix=new_prefix(),
            history={"chat.*": {"size": 3, "ttl": 60}} if history else None,
        )
        client = aioredis.Redis.from_url(server.url)
        try:
            group = fresh("chat")
            members = [fresh("member"), await layer.new_channel(), await layer.new_channel()]
            for member in members:
                await layer.group_add(group, member)
            for n in range(4):  # loads the script, opens the connection, trims the history
                await layer.group_send(group, {"n": n})
            own_address = (await client.client_info())["addr"]
            evalsha_before = await _commandstats_calls(client, "evalsha")
            total_before = (await client.info("stats"))["total_commands_processed"]
            await client.slowlog_reset()
            position = await layer.group_send(group, {"n": "measured"})
            entries = await client.slowlog_get(10000)
            total_after = (await client.info("stats"))["total_commands_processed"]
            # Commands a script runs are logged without a client address ("?:0").
            sent = [
                entry["command"].split()[0].upper()
                for entry in entries
                if entry["client_address"] not in (b"?:0", own_address.encode())
            ]
            assert sent == [b"EVALSHA"]
            assert await _commandstats_calls(client, "evalsha") == evalsha_before + 1
            # Everything counted in between is in the slow log (SLOWLOG RESET, the EVALSHA
            # and the commands it ran), besides the first INFO and the SLOWLOG GET.
            assert total_after - total_before == len(entries) + 2
            assert (position is not None) is history
            expected = {"n": "measured"}
            if history:
                expected["position"] = list(position)
            for member in members:
                for _ in range(4):
                    await asyncio.wait_for(layer.receive(member), BOUND)
                assert await asyncio.wait_for(layer.receive(member), BOUND) == expected
        finally:
            await client.aclose()
            await layer.close()


async def test_history_and_presence_info_are_stored_encrypted(redis_server):
    prefix, group = new_prefix(), fresh("chat")
    layer = RedisChannelLayer(
        hosts=[redis_server],
        prefix=prefix,
        symmetric_encryption_keys=["correct horse battery staple"],
        history={"chat.*": {"size": 10}},
    )
    client = aioredis.Redis.from_url(redis_server)
    try:
        member = await layer.new_channel()
        await layer.group_add(group, member, presence={"name": "Ada Lovelace"})
        position = await layer.group_send(group, {"text": "attack at dawn"})
        (kept,) = await client.lrange(f"{prefix}gl:{{{group}}}", 0, -1)
        assert b"attack" not in kept
        (info,) = await client.hvals(f"{prefix}gp:{{{group}}}")
        assert b"Lovelace" not in info
        (entry,) = await client.lrange(f"{prefix}p:{{{layer.process_prefix()}}}", 0, -1)
        assert b"attack" not in entry
        # The position stays readable, like channel names: only the script can number it.
        assert f"@{position.epoch}:{position.offset}|".encode() in entry
        assert await asyncio.wait_for(layer.receive(member), BOUND) == {
            "text": "attack at dawn",
            "position": list(position),
        }
        history = await layer.group_history(group)
        assert history.messages == [(position, {"text": "attack at dawn"})]
        assert await layer.group_presence(group) == {member: {"name": "Ada Lovelace"}}
        # A layer with other keys reads neither, and says the history is not complete.
        other = RedisChannelLayer(
            hosts=[redis_server],
            prefix=prefix,
            symmetric_encryption_keys=["another key"],
            history={"chat.*": {"size": 10}},
        )
        try:
            unreadable = await other.group_history(group)
            assert (unreadable.messages, unreadable.complete) == ([], False)
            assert unreadable.position == position
            assert await other.group_presence(group) == {}
        finally:
            await other.close()
    finally:
        await client.aclose()
        await layer.close()


async def test_a_buffered_group_message_keeps_its_position_when_put_back(redis_server):
    # Closing a layer puts what it popped but did not hand over back on Redis: a group
    # message's position goes back with it.
    prefix, group = new_prefix(), fresh("chat")
    config = {"prefix": prefix, "history": {"chat.*": {"size": 10}}}
    closing = RedisChannelLayer(hosts=[redis_server], **config)
    successor = RedisChannelLayer(hosts=[redis_server], **config)
    try:
        member = fresh("member")
        await closing.group_add(group, member)
        waiting = asyncio.ensure_future(closing.receive(member))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        position = await closing.group_send(group, {"n": 1})
        await asyncio.sleep(0.2)  # popped into the closing layer's buffer
        await closing.close()
        assert await asyncio.wait_for(successor.receive(member), BOUND) == {
            "n": 1,
            "position": list(position),
        }
    finally:
        await closing.close()
        await successor.close()


def test_every_key_of_a_group_and_a_heartbeat_share_one_cluster_slot():
    layer = RedisChannelLayer(hosts=[{"cluster": ["redis://127.0.0.1:7000"]}])
    _, keys = layer._group_route("chat.lobby")
    assert len(keys) == 5
    assert len({key_slot(key.encode()) for key in keys}) == 1
    _, heartbeat = layer._router.heartbeat_route("process1")
    assert heartbeat.endswith("hb:{process1}")


@pytest.mark.parametrize(
    ("group_expiry", "ttl", "lifetime"), [(100, 500, 500), (1000, 500, 1000), (100, None, 100)]
)
async def test_history_lives_its_ttl_or_the_group_expiry_after_the_last_send(
    redis_server, group_expiry, ttl, lifetime
):
    # The lifetime the script gives the history's keys, read back from Redis.
    prefix, group = new_prefix(), fresh("chat")
    rule = {"size": 10} if ttl is None else {"ttl": ttl}
    layer = RedisChannelLayer(
        hosts=[redis_server], prefix=prefix, group_expiry=group_expiry, history={"chat.*": rule}
    )
    client = aioredis.Redis.from_url(redis_server)
    try:
        await layer.group_send(group, {"n": 1})
        for kind in ("gh", "gl"):
            remaining_ms = await client.pttl(f"{prefix}{kind}:{{{group}}}")
            assert (lifetime - 10) * 1000 < remaining_ms <= lifetime * 1000
    finally:
        await client.aclose()
        await layer.close()


@pytest.fixture(autouse=True)
def _no_heartbeat_thread_left():
    """Every test closes its layers, which stops their heartbeat threads."""
    yield
    left = [thread.name for thread in threading.enumerate() if "heartbeat" in thread.name]
    assert not left, f"heartbeat threads left running: {left}"
