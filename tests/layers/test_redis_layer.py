"""The Redis layer on one server: the conformance suite, options, lossless close, encryption.

Sharding, TLS, unix sockets and Sentinel are in test_redis_hosts.py, Redis Cluster in
test_redis_cluster.py, outages and restarts in test_redis_faults.py, presence and history
beyond the conformance suite in test_redis_presence_history.py.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis

from channels_core.exceptions import ChannelFull, ImproperlyConfigured, LayerClosed, MessageTooLarge
from channels_core.layers import resolve_backend
from channels_core.names import random_suffix
from channels_core.testing.conformance import LayerConformance, fresh
from channels_core.testing.redis import redis_server, running_redis
from channels_redis import RedisChannelLayer
from channels_redis.crypto import MessageCipher
from channels_redis.hosts import HashRing

__all__ = ["redis_server"]  # the fixture, imported for the tests here

# Every wait for a message is bounded by this.
BOUND = 10.0


def new_prefix() -> str:
    return f"test.{random_suffix()}:"


class TestRedisLayerConformance(LayerConformance):
    """The shared layer contract, against the Redis layer on one server."""

    @pytest.fixture
    def make_layer(self, redis_server):
        def make(**config):
            return RedisChannelLayer(hosts=[redis_server], prefix=new_prefix(), **config)

        return make


class TestEncryptedRedisLayerConformance(TestRedisLayerConformance):
    """The contract again with symmetric_encryption_keys: encryption changes nothing visible."""

    @pytest.fixture
    def make_layer(self, redis_server):
        def make(**config):
            return RedisChannelLayer(
                hosts=[redis_server],
                prefix=new_prefix(),
                symmetric_encryption_keys=["correct horse battery staple"],
                **config,
            )

        return make


def test_redis_is_the_registered_redis_backend():
    assert resolve_backend("redis") is RedisChannelLayer


@pytest.mark.parametrize(
    ("config", "words"),
    [
        pytest.param({"hosts": "redis://127.0.0.1:6379/0"}, "non-empty list", id="hosts-str"),
        pytest.param({"hosts": []}, "non-empty list", id="no-hosts"),
        pytest.param({"hosts": ["127.0.0.1"]}, "neither a URL", id="host-without-port"),
        pytest.param({"hosts": [{"host": "x"}]}, "none of the keys", id="dict-without-address"),
        pytest.param({"hosts": [{"address": 5}]}, "'address'", id="dict-bad-address"),
        pytest.param(
            {"hosts": [{"address": "redis://127.0.0.1:1/0", "no_such_option": 1}]},
            "cannot be used",
            id="unknown-redis-option",
        ),
        pytest.param(
            {"hosts": [{"sentinels": [("127.0.0.1", 1)]}]}, "master_name", id="no-master-name"
        ),
        pytest.param(
            {"hosts": [{"sentinels": ["127.0.0.1"], "master_name": "m"}]},
            "(host, port) pairs",
            id="bad-sentinels",
        ),
        pytest.param({"hosts": [{"cluster": "redis://x"}]}, "'cluster'", id="cluster-not-list"),
        pytest.param(
            {"hosts": ["redis://127.0.0.1:1/0", ("127.0.0.1", 1)]}, "twice", id="same-twice"
        ),
        pytest.param({"prefix": ""}, "'prefix'", id="empty-prefix"),
        pytest.param({"prefix": "a{b}:"}, "braces", id="prefix-with-braces"),
        pytest.param({"symmetric_encryption_keys": "secret"}, "non-empty list", id="keys-str"),
        pytest.param({"symmetric_encryption_keys": []}, "non-empty list", id="no-keys"),
        pytest.param({"symmetric_encryption_keys": [""]}, "non-empty strings", id="empty-key"),
        pytest.param({"max_connections": 0}, "'max_connections'", id="no-connections"),
        pytest.param({"max_connections": "10"}, "positive integer", id="connections-str"),
        pytest.param(
            {"hosts": [{"address": "redis://127.0.0.1:1/0", "max_connections": 5}]},
            "layer option max_connections",
            id="max-connections-in-a-host",
        ),
    ],
)
def test_bad_redis_options_raise_improperly_configured_sentences(config, words):
    with pytest.raises(ImproperlyConfigured, match="Redis layer") as raised:
        RedisChannelLayer(**config)
    assert words in str(raised.value)


def test_bad_key_error_does_not_show_the_key():
    with pytest.raises(ImproperlyConfigured) as raised:
        RedisChannelLayer(symmetric_encryption_keys=("s3cret", 5))
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("host", "name"),
    [
        (("127.0.0.1", 6390), "redis://127.0.0.1:6390/0"),
        ("redis://:pw@127.0.0.1:6390/2", "redis://:***@127.0.0.1:6390/2"),
        ({"address": "redis://u:pw@127.0.0.1:6390/0"}, "redis://u:***@127.0.0.1:6390/0"),
        ({"address": ("127.0.0.1", 6391), "password": "pw"}, "redis://127.0.0.1:6391/0"),
        ("unix:///tmp/redis.sock?db=1", "unix:///tmp/redis.sock?db=1"),
        (
            {"sentinels": [("127.0.0.1", 26379)], "master_name": "mymaster"},
            "sentinel://127.0.0.1:26379/mymaster",
        ),
        ({"cluster": ["redis://127.0.0.1:7000"]}, "cluster://127.0.0.1:7000"),
    ],
)
def test_host_forms_are_named_without_their_password(host, name):
    assert RedisChannelLayer(hosts=[host]).shards[0].name == name


def test_the_hash_ring_is_stable_and_moves_about_one_nth_when_a_host_is_added():
    names = [f"chat.room{n}" for n in range(3000)]
    three = HashRing(["a", "b", "c"])
    shuffled = HashRing(["c", "a", "b"])
    four = HashRing(["a", "b", "c", "d"])
    on_three = [["a", "b", "c"][three.index(name)] for name in names]
    # The order of hosts does not matter; every shard gets a fair share.
    assert on_three == [["c", "a", "b"][shuffled.index(name)] for name in names]
    assert all(on_three.count(shard) > 600 for shard in "abc")
    moved = sum(
        ["a", "b", "c", "d"][four.index(name)] != before
        for name, before in zip(names, on_three, strict=True)
    )
    assert 0.15 * len(names) < moved < 0.35 * len(names)  # about 1/4 moves, all to "d"
    assert all(
        ["a", "b", "c", "d"][four.index(name)] in (before, "d")
        for name, before in zip(names, on_three, strict=True)
    )


async def test_two_layers_on_one_prefix_share_channels_and_groups(redis_server):
    # Two layer instances stand for two processes configured alike.
    prefix = new_prefix()
    first = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
    second = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
    try:
        channel, group, reply = fresh("shared"), fresh("group"), await first.new_channel()
        await first.send(channel, {"n": 1})
        assert await asyncio.wait_for(second.receive(channel), BOUND) == {"n": 1}
        await second.group_add(group, reply)
        await second.group_send(group, {"n": 2})
        received = await asyncio.wait_for(first.receive_prefix(first.process_prefix()), BOUND)
        assert received == (reply, {"n": 2})
        assert await first.group_members(group) == [reply]
    finally:
        await first.close()
        await second.close()


def test_sync_code_uses_the_layer_from_short_lived_event_loops(redis_server):
    # A Django view calling Channel(name).send() runs each call on an event loop of its own
    # (async_to_sync); the layer keeps clients per loop and closes them with their loop.
    layer = RedisChannelLayer(hosts=[redis_server], prefix=new_prefix())
    channel, group = fresh("sync"), fresh("group")
    asyncio.run(layer.group_add(group, channel))
    for n in range(3):
        asyncio.run(layer.send(channel, {"n": n}))
    asyncio.run(layer.group_send(group, {"n": 3}))
    received = [asyncio.run(layer.receive(channel))["n"] for _ in range(4)]
    assert received == [0, 1, 2, 3]
    assert asyncio.run(layer.stats()).pending == 0
    asyncio.run(layer.close())


# Lossless close ------------------------------------------------------------------------


async def _redis_length(url: str, key: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        return await client.llen(key)
    finally:
        await client.aclose()


async def test_close_puts_popped_unreceived_messages_back_at_the_head_in_order(redis_server):
    prefix = new_prefix()
    closing = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
    successor = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
    channel, other = fresh("handover"), fresh("other")
    key = f"{prefix}c:{{{channel}}}"
    try:
        # A receive that is cancelled leaves its BLPOP running: the next message is popped
        # into this process's buffer with nobody to receive it.
        for name in (channel, other):
            waiting = asyncio.ensure_future(closing.receive(name))
            await asyncio.sleep(0.05)
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
        for n in range(5):
            await closing.send(channel, {"n": n})
        await closing.send(other, {"n": "other"})
        for _ in range(200):
            if await _redis_length(redis_server, key) == 4:
                break
            await asyncio.sleep(0.01)
        assert await _redis_length(redis_server, key) == 4, "the first message was not popped"
        # A receive still waits on a third channel: close wakes its BLPOP.
        still_waiting = asyncio.ensure_future(closing.receive(fresh("idle")))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(closing.close(), BOUND)
        with pytest.raises(LayerClosed):
            await asyncio.wait_for(still_waiting, BOUND)
        received = [
            (await asyncio.wait_for(successor.receive(channel), BOUND))["n"] for _ in range(5)
        ]
        assert received == [0, 1, 2, 3, 4]
        assert await asyncio.wait_for(successor.receive(other), BOUND) == {"n": "other"}
        assert (await successor.stats()).pending == 0
    finally:
        await closing.close()
        await successor.close()


async def test_close_keeps_capacity_counts_of_process_channels_right(redis_server):
    # A process channel read by a layer of another process (receive on its full name): what
    # that layer buffered goes back with its capacity slot, so the channel's capacity holds.
    prefix = new_prefix()
    owner = RedisChannelLayer(hosts=[redis_server], prefix=prefix, capacity=3)
    reader = RedisChannelLayer(hosts=[redis_server], prefix=prefix, capacity=3)
    try:
        channel = await owner.new_channel()
        waiting = asyncio.ensure_future(reader.receive(channel))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        for n in range(3):
            await owner.send(channel, {"n": n})
        await asyncio.sleep(0.2)
        await reader.close()
        with pytest.raises(ChannelFull):
            await owner.send(channel, {"n": 3})
        received = [(await asyncio.wait_for(owner.receive(channel), BOUND))["n"] for _ in range(3)]
        assert received == [0, 1, 2]
        await owner.send(channel, {"n": 3})
    finally:
        await owner.close()
        await reader.close()


# Encryption ------------------------------------------------------------------------------


async def test_messages_are_stored_encrypted(redis_server):
    prefix = new_prefix()
    layer = RedisChannelLayer(hosts=[redis_server], prefix=prefix, symmetric_encryption_keys=["k1"])
    client = aioredis.Redis.from_url(redis_server)
    try:
        channel = fresh("secret")
        await layer.send(channel, {"text": "attack at dawn"})
        (stored,) = await client.lrange(f"{prefix}c:{{{channel}}}", 0, -1)
        assert b"attack" not in stored
        assert await asyncio.wait_for(layer.receive(channel), BOUND) == {"text": "attack at dawn"}
    finally:
        await client.aclose()
        await layer.close()


async def test_key_rotation_old_key_still_decrypts(redis_server):
    prefix = new_prefix()
    old = RedisChannelLayer(hosts=[redis_server], prefix=prefix, symmetric_encryption_keys=["old"])
    rotated = RedisChannelLayer(
        hosts=[redis_server], prefix=prefix, symmetric_encryption_keys=["new", "old"]
    )
    new_only = RedisChannelLayer(
        hosts=[redis_server], prefix=prefix, symmetric_encryption_keys=["new"]
    )
    try:
        channel = fresh("rotate")
        await old.send(channel, {"n": "by old"})
        await rotated.send(channel, {"n": "by rotated"})
        assert await asyncio.wait_for(rotated.receive(channel), BOUND) == {"n": "by old"}
        # What the rotated layer wrote is readable by one that has only the new key.
        assert await asyncio.wait_for(new_only.receive(channel), BOUND) == {"n": "by rotated"}
    finally:
        for layer in (old, rotated, new_only):
            await layer.close()


@pytest.mark.parametrize("receiver_keys", [["other key"], None], ids=["wrong-key", "no-key"])
async def test_undecryptable_messages_are_dropped_counted_and_logged_once(
    redis_server, caplog, receiver_keys
):
    prefix = new_prefix()
    sender = RedisChannelLayer(
        hosts=[redis_server], prefix=prefix, symmetric_encryption_keys=["the key"]
    )
    receiver = RedisChannelLayer(
        hosts=[redis_server], prefix=prefix, symmetric_encryption_keys=receiver_keys
    )
    try:
        channel = fresh("mismatch")
        for n in range(3):
            await sender.send(channel, {"n": n})
        # The receive loop survives them: a message it can read, sent after them, arrives.
        await receiver.send(channel, {"n": "readable"})
        with caplog.at_level(logging.ERROR, logger="channels_redis.layer"):
            message = await asyncio.wait_for(receiver.receive(channel), BOUND)
        assert message == {"n": "readable"}
        assert receiver.undecryptable_count == 3
        errors = [record for record in caplog.records if record.levelno == logging.ERROR]
        assert len(errors) == 1
        assert channel in errors[0].getMessage()
        assert "symmetric_encryption_keys" in errors[0].getMessage()
        # The drops are counted in Redis: another layer (process) sees them in its stats.
        assert (await receiver.stats(channel)).dropped == 3
        observer = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
        try:
            assert (await observer.stats(channel)).dropped == 3
            assert (await observer.stats(fresh("other"))).dropped == 0
            assert (await observer.stats()).dropped == 3
        finally:
            await observer.close()
    finally:
        await sender.close()
        await receiver.close()


async def test_undecryptable_group_message_is_dropped_once_per_member_of_a_process(redis_server):
    prefix = new_prefix()
    sender = RedisChannelLayer(
        hosts=[redis_server], prefix=prefix, symmetric_encryption_keys=["the key"]
    )
    receiver = RedisChannelLayer(
        hosts=[redis_server], prefix=prefix, symmetric_encryption_keys=["other key"]
    )
    try:
        group = fresh("group")
        channels = [await receiver.new_channel() for _ in range(3)]
        for channel in channels:
            await receiver.group_add(group, channel)
        await sender.group_send(group, {"n": "unreadable"})
        await receiver.group_send(group, {"n": "readable"})
        for channel in channels:
            assert await asyncio.wait_for(receiver.receive(channel), BOUND) == {"n": "readable"}
        assert receiver.undecryptable_count == 3
        # A layer's stats() waits for its own drops to be counted in Redis; then another
        # layer sees them too.
        assert (await receiver.stats()).dropped == 3
        stats = await sender.stats()
        assert (stats.dropped, stats.pending) == (3, 0)
        assert (await sender.stats(channels[0])).dropped == 1
    finally:
        await sender.close()
        await receiver.close()


async def test_a_group_send_stores_one_entry_per_process_with_per_member_capacity(redis_server):
    prefix = new_prefix()
    layer = RedisChannelLayer(hosts=[redis_server], prefix=prefix, capacity=2)
    client = aioredis.Redis.from_url(redis_server)
    try:
        group = fresh("group")
        channels = [await layer.new_channel() for _ in range(50)]
        plain = fresh("plain")
        for channel in [*channels, plain]:
            await layer.group_add(group, channel)
        await layer.send(channels[0], {"n": "direct"})
        await layer.group_send(group, {"n": 1})
        await layer.group_send(group, {"n": 2})  # channels[0] is full now: skipped, counted
        process_list = f"{prefix}p:{{{layer.process_prefix()}}}"
        assert await client.llen(process_list) == 3  # the send, then one entry per group send
        stats = await layer.stats()
        assert (stats.pending, stats.full_count) == (1 + 50 + 49 + 2, 1)
        assert (await layer.stats(channels[0])).pending == 2
        assert (await layer.stats(channels[1])).pending == 2
        assert [await asyncio.wait_for(layer.receive(channels[0]), BOUND) for _ in range(2)] == [
            {"n": "direct"},
            {"n": 1},
        ]
        for channel in channels[1:]:
            first = await asyncio.wait_for(layer.receive(channel), BOUND)
            second = await asyncio.wait_for(layer.receive(channel), BOUND)
            assert (first, second) == ({"n": 1}, {"n": 2})
            # Each receiver has a dict of its own.
            assert first is not second
        assert [await asyncio.wait_for(layer.receive(plain), BOUND) for _ in range(2)] == [
            {"n": 1},
            {"n": 2},
        ]
        # Popping freed every member's capacity: they take two messages each again.
        await layer.group_send(group, {"n": 3})
        await layer.group_send(group, {"n": 4})
        assert (await layer.stats()).full_count == 1
        # While no member could be full, the process's channels are not counted one by one.
        counts = f"{prefix}n:{{{layer.process_prefix()}}}"
        assert await client.exists(counts) == 0
        # Now each could be: they are counted (from the process list), and all are full.
        await layer.group_send(group, {"n": 5})
        assert (await layer.stats()).full_count == 1 + 51
        assert await client.hlen(counts) == 50 + 1  # and the mark that they are counted
    finally:
        await layer.close()
        await client.aclose()


async def test_process_channels_are_counted_once_one_could_be_full(redis_server):
    # Entries popped before counting starts were never counted; counting then starts from the
    # list as it is, and stops when the list is emptied.
    prefix = new_prefix()
    layer = RedisChannelLayer(hosts=[redis_server], prefix=prefix, capacity=3)
    client = aioredis.Redis.from_url(redis_server)
    try:
        channel, other = await layer.new_channel(), await layer.new_channel()
        counts = f"{prefix}n:{{{layer.process_prefix()}}}"
        for n in range(2):
            await layer.send(channel, {"n": n})
        # The pop takes both entries (1 is buffered here) and empties the list.
        assert (await asyncio.wait_for(layer.receive(channel), BOUND))["n"] == 0
        await layer.send(other, {"n": "other"})
        for n in range(2, 4):
            await layer.send(channel, {"n": n})
        assert await client.exists(counts) == 0
        await layer.send(channel, {"n": 4})  # the list held 3 entries: counted from here
        assert await client.hgetall(counts) == {
            b"!": b"1",
            channel.encode(): b"3",
            other.encode(): b"1",
        }
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"n": 5})
        assert (await asyncio.wait_for(layer.receive(other), BOUND))["n"] == "other"
        # That pop took the channel's entries too (buffered here): their slots are free again.
        assert await client.exists(counts) == 0
        await layer.send(channel, {"n": 5})
        received = [(await asyncio.wait_for(layer.receive(channel), BOUND))["n"] for _ in range(5)]
        assert received == [1, 2, 3, 4, 5]
        assert (await layer.stats()).full_count == 1
    finally:
        await layer.close()
        await client.aclose()


async def test_group_message_receivers_each_get_a_fresh_dict(redis_server):
    layer = RedisChannelLayer(hosts=[redis_server], prefix=new_prefix())
    try:
        group = fresh("group")
        channels = [await layer.new_channel() for _ in range(2)]
        for channel in channels:
            await layer.group_add(group, channel)
        await layer.group_send(group, {"items": [1, 2]})
        first = await asyncio.wait_for(layer.receive(channels[0]), BOUND)
        first["items"].append(3)
        assert await asyncio.wait_for(layer.receive(channels[1]), BOUND) == {"items": [1, 2]}
    finally:
        await layer.close()


@pytest.mark.parametrize("max_connections", [5, None], ids=["five", "default"])
async def test_hundreds_of_concurrent_calls_queue_for_connections(max_connections):
    options = {} if max_connections is None else {"max_connections": max_connections}
    with running_redis() as url:
        layer = RedisChannelLayer(hosts=[url], **options)
        observer = aioredis.Redis.from_url(url)
        try:
            group = fresh("group")
            channels = [f"{fresh('member')}.{n}" for n in range(500)]
            await asyncio.wait_for(
                asyncio.gather(*(layer.group_add(group, channel) for channel in channels)), BOUND
            )
            assert len(await layer.group_members(group)) == 500
            await asyncio.wait_for(
                asyncio.gather(
                    *(layer.send(channel, {"n": 1}) for channel in channels),
                    *(layer.group_send(group, {"n": 2}) for _ in range(10)),
                ),
                BOUND,
            )
            assert (await layer.stats()).pending == 500 * 11
            if max_connections is not None:
                # The calls' connections, one of redis-py's pool (group_members, stats), and
                # the observer's own.
                assert len(await observer.client_list()) <= max_connections + 2
        finally:
            await layer.close()
            await observer.aclose()


def test_encryption_keys_are_derived_as_channels_redis_does():
    # channels_redis: base64.urlsafe_b64encode(hashlib.sha256(key.encode("utf8")).digest())
    assert MessageCipher.derive("abc") == b"ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0="


# Limits --------------------------------------------------------------------------------


async def test_oversized_message_error_names_the_limit_and_the_option(redis_server):
    layer = RedisChannelLayer(hosts=[redis_server], prefix=new_prefix(), max_message_size=1000)
    try:
        with pytest.raises(MessageTooLarge) as raised:
            await layer.send(fresh("big"), {"blob": b"x" * 2000})
        assert "1000 bytes" in str(raised.value)
        assert "max_message_size" in str(raised.value)
    finally:
        await layer.close()
