"""The Redis layer on a real Redis Cluster of three primaries started by the tests."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from channels_core.names import random_suffix
from channels_core.testing.conformance import LayerConformance, fresh
from channels_core.testing.redis import running_cluster
from channels_redis import RedisChannelLayer

BOUND = 10.0


@pytest.fixture(scope="module")
def cluster():
    with running_cluster(primaries=3) as servers:
        yield servers


def cluster_layer(servers, **config) -> RedisChannelLayer:
    return RedisChannelLayer(
        hosts=[{"cluster": [server.url for server in servers[:2]]}],
        prefix=f"test.{random_suffix()}:",
        **config,
    )


class TestRedisClusterLayerConformance(LayerConformance):
    """The whole shared layer contract, against a three-primary Redis Cluster."""

    @pytest.fixture
    def make_layer(self, cluster):
        return lambda **config: cluster_layer(cluster, **config)


async def test_keys_spread_over_the_primaries_and_group_send_reaches_all(cluster):
    layer = cluster_layer(cluster)
    try:
        group = fresh("everyone")
        members = [fresh("member") for _ in range(30)] + [
            f"{fresh('specific')}!{fresh('reply')}" for _ in range(10)
        ]
        for member in members:
            await layer.group_add(group, member)
        await layer.group_send(group, {"n": 1})
        for server in cluster:
            client = aioredis.Redis.from_url(server.url)
            try:
                keys = [key async for key in client.scan_iter(match=f"{layer.prefix}*")]
            finally:
                await client.aclose()
            assert len(keys) >= 5, f"primary {server.port} holds only {keys}"
        assert (await layer.stats()).pending == len(members)
        for member in members[:30]:
            assert await asyncio.wait_for(layer.receive(member), BOUND) == {"n": 1}
    finally:
        await layer.close()
