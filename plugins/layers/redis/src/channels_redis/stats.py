"""The layer's statistics: messages pending, the oldest one's age, refusals and drops.

Read from Redis (every process's lists and counters) plus this process's buffered messages;
for the whole layer by scanning its keys on every server, so they are for tools, not hot paths.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import redis.asyncio as aioredis

from channels_core.layers import LayerStats

from .hosts import Shard
from .keys import KeyRouter, Runner
from .waiters import Waiters

# Per server: the shard, a client of the server, the lists to read and the counters to sum.
_Target = tuple[Shard, aioredis.Redis, list[bytes], list[bytes]]


class StatsReader:
    """Reads a layer's :class:`LayerStats` from its keys and its buffered messages."""

    def __init__(self, keys: KeyRouter, run: Runner, waiting: Waiters) -> None:
        self._keys = keys
        self._run = run
        self._waiting = waiting

    async def read(self, channel: str | None, expiry: float) -> LayerStats:
        """The statistics of *channel*, or of the whole layer when None (every process's
        refusals and drops); *expiry* is the layer's, which tells a message's age."""
        if channel is None:
            targets = await self._layer_targets()
        else:
            targets = [await self._channel_target(channel)]
        entries: list[tuple[str, float]] = []
        counts = {b"f": 0, b"d": 0}
        for target in targets:
            await self._read(target, channel, entries, counts)
        if channel is not None:
            entries = [entry for entry in entries if entry[0] == channel]
        self._add_buffered(channel, entries)
        now = time.time()
        live = [expires_at for _, expires_at in entries if expires_at > now]
        oldest_age = None
        if live:
            oldest_age = max(0.0, now - (min(live) - expiry))
        return LayerStats(
            pending=len(live),
            oldest_age=oldest_age,
            full_count=counts[b"f"],
            dropped=counts[b"d"],
        )

    def _add_buffered(self, channel: str | None, entries: list[tuple[str, float]]) -> None:
        """Add the messages this process buffered (of *channel*, or all) to *entries*."""
        for name, buffer in self._waiting.buffers.items():
            if channel is None or name == channel:
                entries.extend((name, expires_at) for expires_at, _ in buffer)

    async def _channel_target(self, channel: str) -> _Target:
        """*channel*'s list and counters, on its server."""
        shard, (list_key, _, full_key, dropped_key) = self._keys.route(channel)
        client = await self._run(shard, functools.partial(shard.node_client, list_key))
        return (shard, client, [list_key.encode()], [full_key.encode(), dropped_key.encode()])

    async def _layer_targets(self) -> list[_Target]:
        """Every list and counter of the layer, per server."""
        kind_of = self._keys.kind
        targets = []
        for shard, client, keys in await self._keys.every_key(self._run):
            kinds = [(key, kind_of(key)) for key in keys]
            lists = [key for key, kind in kinds if kind in (b"c:{", b"p:{")]
            counters = [key for key, kind in kinds if kind in (b"f:{", b"d:{")]
            targets.append((shard, client, lists, counters))
        return targets

    async def _read(
        self,
        target: _Target,
        channel: str | None,
        entries: list[tuple[str, float]],
        counts: dict[bytes, int],
    ) -> None:
        """Add the entries of *target*'s lists to *entries*, its counters to *counts*."""
        shard, client, lists, counters = target

        async def read() -> list:
            async with client.pipeline(transaction=False) as pipe:
                for key in lists:
                    pipe.lrange(key, 0, -1)
                for key in counters:
                    _read_counter(pipe, key, channel)
                return await pipe.execute()

        replies = await self._run(shard, read)
        entry_channels = self._keys.entry_channels
        for key, items in zip(lists, replies, strict=False):
            for entry in items:
                entries += entry_channels(key, entry)
        prefix_length = len(self._keys.prefix)
        for key, value in zip(counters, replies[len(lists) :], strict=True):
            values = value if isinstance(value, list) else [value]
            counts[key[prefix_length : prefix_length + 1]] += sum(
                int(count or 0) for count in values
            )


def _read_counter(pipe: Any, key: bytes, channel: str | None) -> None:
    """Queue the read of counter *key* on *pipe*: *channel*'s count, or every count."""
    if b"!" in key and channel:
        pipe.hget(key, channel)
    elif b"!" in key:
        pipe.hvals(key)
    else:
        pipe.get(key)
