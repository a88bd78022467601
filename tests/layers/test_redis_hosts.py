"""The Redis layer over several servers (sharding), a unix socket, TLS and Sentinel.

Every server is a real ``redis-server`` started here; the sharded layer runs the whole
conformance suite, the other forms a round trip of every operation.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from channels_core.exceptions import LayerUnavailable
from channels_core.names import random_suffix
from channels_core.testing.conformance import LayerConformance, fresh
from channels_core.testing.redis import RedisServer, running_sentinel
from channels_redis import RedisChannelLayer

BOUND = 10.0


@pytest.fixture(scope="module")
def shard_servers():
    servers = [RedisServer().start() for _ in range(3)]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def sharded_layer(servers, **config) -> RedisChannelLayer:
    return RedisChannelLayer(
        hosts=[server.url for server in servers], prefix=f"test.{random_suffix()}:", **config
    )


class TestShardedRedisLayerConformance(LayerConformance):
    """The shared layer contract, with channels and groups spread over three servers."""

    @pytest.fixture
    def make_layer(self, shard_servers):
        return lambda **config: sharded_layer(shard_servers, **config)


async def _keys_on(server: RedisServer, prefix: str) -> list[bytes]:
    client = aioredis.Redis.from_url(server.url)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}*")]
    finally:
        await client.aclose()


async def test_channels_groups_and_process_lists_spread_over_the_shards(shard_servers):
    layer = sharded_layer(shard_servers)
    try:
        channels = [fresh("spread") for _ in range(60)]
        for channel in channels:
            await layer.send(channel, {"to": channel})
        for index in range(30):
            await layer.group_add(fresh(f"group{index}"), channels[index])
        for _ in range(30):
            # A reply channel of some other process.
            await layer.send(f"{fresh('specific')}!{fresh('reply')}", {"n": 1})
        kinds = [
            {
                key[len(layer.prefix) : len(layer.prefix) + 2]
                for key in await _keys_on(s, layer.prefix)
            }
            for s in shard_servers
        ]
        # Each server holds channel lists, process lists and groups, and a fair share of keys.
        for held in kinds:
            assert {b"c:", b"p:", b"g:"} <= held
        total = sum([len(await _keys_on(s, layer.prefix)) for s in shard_servers])
        for server in shard_servers:
            assert len(await _keys_on(server, layer.prefix)) > total * 0.15
        assert (await layer.stats()).pending == 90
        for channel in channels:
            assert await asyncio.wait_for(layer.receive(channel), BOUND) == {"to": channel}
    finally:
        await layer.close()


async def test_group_send_reaches_members_on_every_shard_in_one_call_per_shard(shard_servers):
    layer = sharded_layer(shard_servers, capacity=1)
    try:
        group = fresh("everywhere")
        members = [fresh("member") for _ in range(40)] + [
            await layer.new_channel() for _ in range(5)
        ]
        for member in members:
            await layer.group_add(group, member)
        await layer.send(members[0], {"n": "first"})  # full: skipped and counted
        await layer.group_send(group, {"n": "all"})
        assert await asyncio.wait_for(layer.receive(members[0]), BOUND) == {"n": "first"}
        for member in members[1:]:
            assert await asyncio.wait_for(layer.receive(member), BOUND) == {"n": "all"}
        assert (await layer.stats()).full_count == 1
        shards_of_members = {layer._route(member)[0].name for member in members}
        assert len(shards_of_members) == 3
    finally:
        await layer.close()


async def exercise(layer: RedisChannelLayer) -> None:
    """Every operation once: send, receive, receive_prefix, groups, stats, flush."""
    channel, group = fresh("plain"), fresh("group")
    reply = await layer.new_channel()
    await layer.send(channel, {"n": 1})
    assert await asyncio.wait_for(layer.receive(channel), BOUND) == {"n": 1}
    await layer.group_add(group, reply)
    await layer.group_add(group, channel)
    await layer.group_send(group, {"n": 2})
    prefix = layer.process_prefix()
    assert await asyncio.wait_for(layer.receive_prefix(prefix), BOUND) == (reply, {"n": 2})
    assert (await layer.stats()).pending == 1
    await layer.flush()
    assert (await layer.stats()).pending == 0


async def test_unix_socket_host():
    with RedisServer(unix_socket=True) as server:
        layer = RedisChannelLayer(hosts=[f"unix://{server.socket_path}?db=0"])
        try:
            await exercise(layer)
        finally:
            await layer.close()


async def test_tls_host_with_the_servers_certificate():
    with RedisServer(tls=True) as server:
        layer = RedisChannelLayer(
            hosts=[{"address": server.url, "ssl_ca_certs": server.ca_file}],
            symmetric_encryption_keys=["and encrypted at rest"],
        )
        try:
            await exercise(layer)
        finally:
            await layer.close()


async def test_tls_host_with_an_untrusted_certificate_is_unavailable_with_a_sentence():
    with RedisServer(tls=True) as server:
        layer = RedisChannelLayer(hosts=[server.url])
        try:
            with pytest.raises(LayerUnavailable, match=rf"{server.port}.*(?i:certificate)"):
                await asyncio.wait_for(layer.send(fresh("tls"), {"n": 1}), BOUND)
        finally:
            await layer.close()


async def test_sentinel_host_finds_the_master():
    with RedisServer(password="sentinel-pw") as master, running_sentinel(master) as sentinel:
        layer = RedisChannelLayer(
            hosts=[
                {
                    "sentinels": [sentinel],
                    "master_name": "mymaster",
                    "password": "sentinel-pw",
                }
            ]
        )
        try:
            await exercise(layer)
            channel = fresh("through.sentinel")
            await layer.send(channel, {"n": 1})
            # The message is on the master the sentinel named.
            assert any(b"through.sentinel" in key for key in await _keys_on(master, layer.prefix))
        finally:
            await layer.close()
