"""Where a channel or a group lives: its shard and its Redis keys.

Keys, all under the layer's ``prefix``, each with a hash tag so that one channel's, one process
prefix's or one group's keys share a Redis Cluster slot:

``c:{<channel>}``
    a list of entries ``<expires_at>|<packed message>`` for a normal channel;
``p:{<process prefix>}``
    one list per process prefix (``specific.XXXX!``) of entries
    ``<expires_at>|<channels>|<packed message>``, so one waiting pop serves every reply channel
    of a process; ``n:{<process prefix>}`` is a hash counting each channel's entries, for
    capacity, while one of them could be full (see :mod:`channels_redis.scripts`);
``g:{<group>}``
    a sorted set of member channels scored by membership expiry, ``gc:{<group>}`` the hash
    of each member's capacity (fixed at ``group_add``, so a group send needs no glob matching),
    and ``gp:{<group>}`` the hash of each present member's ``<process id>|<packed info>``;
``gh:{<group>}`` and ``gl:{<group>}``
    a group's history (the ``history`` option): a hash of its ``epoch``, the ``last`` offset
    given and the highest offset ``dropped``, and the list of kept messages, oldest first,
    as ``<offset>|<kept at, ms of the server's clock>|<packed message>``;
``hb:{<process id>}``
    the heartbeat of a layer instance with present members, which expires
    ``presence_timeout`` after its last renewal (see :mod:`channels_redis.presence`);
``i:{<channel>}:<id>`` and ``i:{<process prefix>}:<id>``
    the in-flight list of the layer instance ``<id>`` popping that channel's or that process
    prefix's list: what its last pop took, kept until its next pop (see
    :mod:`channels_redis.popping`); it expires with the messages it holds;
``f:{<channel>}`` and ``f:{<process prefix>}``
    counters of sends refused at capacity (a hash by channel for a process prefix);
``d:{<channel>}`` and ``d:{<process prefix>}``
    counters of messages receivers dropped because they could not decrypt or read them;
``dl:{delayed}``
    the delayed messages (``asgi.delay``) kept until they are due: a sorted set scored by due
    time of ``<first due>|<capacity>|<channel>|<id>|<packed message>`` (see
    :mod:`channels_redis.delays`); it has no expiry.

With several ``hosts``, a consistent-hash ring places each channel (a process-specific one by
its process prefix) and each group on one of them; see :mod:`channels_redis.hosts`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from channels_core.names import process_prefix

from .hosts import HashRing, Shard

_ROUTE_CACHE_SIZE = 10_000

#: How the layer makes a call on a shard: ``await run(shard, call, queued=True)``, which
#: raises LayerClosed once the layer is closed (``RedisChannelLayer._run``).
Runner = Callable[..., Awaitable[Any]]


class KeyRouter:
    """The shard and the keys of each channel and group of a layer (see the module).

    :param prefix: the layer's ``prefix``, the start of every key.
    :param shards: the layer's shards, in ``hosts`` order.
    """

    def __init__(self, prefix: str, shards: list[Shard]) -> None:
        self.prefix = prefix
        self.shards = shards
        self._ring = HashRing([shard.name for shard in shards]) if len(shards) > 1 else None
        self._routes: dict[str, tuple[Shard, tuple[str, str, str, str]]] = {}

    def shard_for(self, name: str) -> Shard:
        """The shard holding *name*: a channel, a process prefix or a group."""
        if self._ring is None:
            return self.shards[0]
        return self.shards[self._ring.index(name)]

    def route(self, channel: str) -> tuple[Shard, tuple[str, str, str, str]]:
        """The shard of *channel* and its keys: list, counts, refusals, drops."""
        route = self._routes.get(channel)
        if route is None:
            if "!" in channel:
                tag, kind = process_prefix(channel), "p:"
            else:
                tag, kind = channel, "c:"
            prefix = self.prefix
            keys = (
                f"{prefix}{kind}{{{tag}}}",
                f"{prefix}n:{{{tag}}}",
                f"{prefix}f:{{{tag}}}",
                f"{prefix}d:{{{tag}}}",
            )
            route = (self.shard_for(tag), keys)
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[channel] = route
        return route

    def inflight_key(self, list_key: str, popper: str) -> str:
        """The in-flight list of the layer instance *popper* for the list *list_key*."""
        start = len(self.prefix)
        return f"{list_key[:start]}i{list_key[start + 1 :]}:{popper}"

    def group_route(self, group: str) -> tuple[Shard, list[str]]:
        """The shard of *group* and its keys: members, member capacities, presence, history
        state, history (the group scripts take the first three or all five)."""
        prefix, tag = self.prefix, f"{{{group}}}"
        return self.shard_for(group), [
            f"{prefix}g:{tag}",
            f"{prefix}gc:{tag}",
            f"{prefix}gp:{tag}",
            f"{prefix}gh:{tag}",
            f"{prefix}gl:{tag}",
        ]

    def delay_route(self) -> tuple[Shard, str]:
        """The shard and the key of the sorted set of delayed messages."""
        return self.shard_for("delayed"), f"{self.prefix}dl:{{delayed}}"

    def heartbeat_route(self, process_id: str) -> tuple[Shard, str]:
        """The shard and the key of the heartbeat of the layer instance *process_id*."""
        return self.shard_for(process_id), f"{self.prefix}hb:{{{process_id}}}"

    def kind(self, key: bytes) -> bytes:
        """The kind of a key read from Redis: its first three bytes after the prefix
        (``b"c:{"``, ``b"p:{"``, ``b"f:{"``, ...)."""
        return key[len(self.prefix) : len(self.prefix) + 3]

    def entry_channels(self, key: bytes, entry: bytes) -> list[tuple[str, float]]:
        """The channels and expiry time of a stored *entry* of *key*: one pair per channel
        (a group send's entry in a process list is a message for each of its channels)."""
        expires_text, _, rest = entry.partition(b"|")
        expires_at = float(expires_text)
        if key[len(self.prefix) :].startswith(b"p:"):
            names = rest.partition(b"|")[0].decode().split(",")
            return [(name, expires_at) for name in names]
        return [(key[len(self.prefix) + 3 : -1].decode(), expires_at)]

    async def every_key(self, run: Runner) -> list[tuple[Shard, aioredis.Redis, list[bytes]]]:
        """Every key of this layer, scanned through *run*: (shard, server client, keys) per
        server (per primary of a Redis Cluster)."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
        found = []
        for shard in self.shards:

            async def scan(shard: Shard = shard) -> list:
                return [
                    (client, [key async for key in client.scan_iter(match=pattern, count=1000)])
                    for client in await shard.node_clients()
                ]

            found += [(shard, client, keys) for client, keys in await run(shard, scan)]
        return found
