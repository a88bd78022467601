"""The Redis layer: the conformance suite against a real redis-server, and a dead server."""

from __future__ import annotations

import asyncio

import pytest

from channels_core.exceptions import ImproperlyConfigured, LayerUnavailable
from channels_core.layers import resolve_backend
from channels_core.names import random_suffix
from channels_core.testing.conformance import LayerConformance, fresh
from channels_core.testing.redis import redis_server, running_redis
from channels_redis import RedisChannelLayer

__all__ = ["redis_server"]  # the fixture, imported for the tests here

# A dead server must be reported well within this; the layer's own timeouts are shorter.
UNAVAILABLE_BOUND = 10.0


class TestRedisLayerConformance(LayerConformance):
    """The shared layer contract, against the Redis layer."""

    @pytest.fixture
    def make_layer(self, redis_server):
        def make(**config):
            return RedisChannelLayer(
                hosts=[redis_server], prefix=f"test.{random_suffix()}:", **config
            )

        return make


def test_redis_is_the_registered_redis_backend():
    assert resolve_backend("redis") is RedisChannelLayer


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"hosts": "redis://127.0.0.1:6379/0"}, id="hosts-str"),
        pytest.param({"hosts": []}, id="no-hosts"),
        pytest.param({"hosts": ["127.0.0.1"]}, id="host-without-port"),
        pytest.param({"prefix": ""}, id="empty-prefix"),
    ],
)
def test_bad_redis_options_raise_improperly_configured(config):
    with pytest.raises(ImproperlyConfigured, match="Redis layer"):
        RedisChannelLayer(**config)


def test_host_as_a_host_port_pair_becomes_a_url():
    assert RedisChannelLayer(hosts=[("127.0.0.1", 6390)]).url == "redis://127.0.0.1:6390/0"


async def test_a_stopped_redis_raises_layer_unavailable():
    with running_redis() as url:
        layer = RedisChannelLayer(hosts=[url])
        channel = fresh("dead")
        await layer.send(channel, {"n": 1})
    # The server is gone now.
    for call in (
        lambda: layer.send(channel, {"n": 2}),
        lambda: layer.group_send(fresh("group"), {"n": 2}),
        lambda: layer.receive(channel),
    ):
        with pytest.raises(LayerUnavailable, match="cannot be reached"):
            await asyncio.wait_for(call(), UNAVAILABLE_BOUND)
    await layer.close()


async def test_two_layers_on_one_prefix_share_channels_and_groups(redis_server):
    # Two layer instances stand for two processes configured alike.
    prefix = f"test.{random_suffix()}:"
    first = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
    second = RedisChannelLayer(hosts=[redis_server], prefix=prefix)
    try:
        channel, group, reply = fresh("shared"), fresh("group"), await first.new_channel()
        await first.send(channel, {"n": 1})
        assert await asyncio.wait_for(second.receive(channel), UNAVAILABLE_BOUND) == {"n": 1}
        await second.group_add(group, reply)
        await second.group_send(group, {"n": 2})
        received = await asyncio.wait_for(
            first.receive_prefix(first.process_prefix()), UNAVAILABLE_BOUND
        )
        assert received == (reply, {"n": 2})
        assert await first.group_members(group) == [reply]
    finally:
        await first.close()
        await second.close()
