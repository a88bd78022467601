"""Groups: ``group_add``, ``group_discard``, ``group_send`` and ``group_members``.

A group is a sorted set of member channels scored by membership expiry, and a hash of each
member's capacity (see :mod:`channels_redis.keys`). A group send is one Lua script call on a
one-server layer; otherwise one call fetches the members and one call per server (per node of
a Redis Cluster) pushes to all of that server's members. A group send stores its message once
per normal member channel and once per process whose channels are members, naming those
channels; the process hands it to each of them when it pops the entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels_core.names import check_channel_name, check_group_name

from . import scripts
from .hosts import Script, Shard

logger = logging.getLogger(__name__)

# Scripts are called with EVALSHA and loaded where missing (Shard.script).
_PUSH_MANY = Script(scripts.PUSH_MANY)
_PUSH_MANY_CLUSTER = Script(scripts.CLUSTER_FLAGS + scripts.PUSH_MANY)
_MEMBERS = Script(scripts.GROUP_MEMBERS)
_GROUP_SEND_LOCAL = Script(scripts.GROUP_SEND_LOCAL)
_GROUP_ADD = Script(scripts.GROUP_ADD)
_GROUP_DISCARD = Script(scripts.GROUP_DISCARD)


class RedisGroups:
    """The group methods of :class:`~channels_redis.layer.RedisChannelLayer`.

    A mixin rather than a helper object, so that a group send is a method of the layer, as
    direct as a send. It uses the layer's ``prefix``, ``group_expiry``, ``capacity_for``,
    ``_route``, ``_group_route``, ``_one_server``, ``_encode``, ``_push_args``, ``_run``,
    ``_script`` and ``_check_open``.
    """

    async def group_add(self, group: str, channel: str) -> None:
        """Add *channel* to *group*, or renew its membership."""
        check_group_name(group)
        check_channel_name(channel)
        self._check_open()
        shard, keys = self._group_route(group)
        args = [channel, repr(time.time() + self.group_expiry), self.capacity_for(channel)]
        await self._script(shard, _GROUP_ADD, keys, [*args, int(self.group_expiry) + 1])

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; nothing happens when it is not a member."""
        check_group_name(group)
        check_channel_name(channel)
        self._check_open()
        shard, keys = self._group_route(group)
        await self._script(shard, _GROUP_DISCARD, keys, [channel])

    async def group_send(self, group: str, message: dict) -> None:
        """Send *message* to every member of *group*; full members are skipped and counted.

        Raises :class:`LayerUnavailable` when a server holding the group or some of its
        members cannot be reached; members on the other servers get the message.
        """
        check_group_name(group)
        data = self._encode(message)
        self._check_open()
        shard, keys = self._group_route(group)
        push_args = self._push_args(data)
        if self._one_server:
            full = await self._script(shard, _GROUP_SEND_LOCAL, keys, [*push_args, self.prefix])
        else:
            flat = await self._script(shard, _MEMBERS, keys, [push_args[0]])
            full = await self._push_to_members(flat, push_args)
        if full:
            logger.debug("Group send to %r skipped %d full members.", group, full)

    async def _push_to_members(self, flat: list[bytes], push_args: list[Any]) -> int:
        """Push to each member in *flat* (channel, capacity, ...): one call per server."""
        batches: dict[int, tuple[Shard, Any, list[str], list[Any]]] = {}
        for index in range(0, len(flat), 2):
            channel = flat[index].decode()
            shard, keys = self._route(channel)
            client = await shard.node_client(keys[0])
            batch = batches.get(id(client))
            if batch is None:
                batch = batches[id(client)] = (shard, client, list(keys[:3]), list(push_args))
            batch[3].extend((*keys[:3], channel, int(flat[index + 1])))
        outcomes = await asyncio.gather(
            *(
                self._script(
                    shard,
                    _PUSH_MANY_CLUSTER if shard.is_cluster else _PUSH_MANY,
                    keys,
                    args,
                    client,
                )
                for shard, client, keys, args in batches.values()
            ),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(outcomes)

    async def group_members(self, group: str) -> list[str]:
        """The channels of *group* whose membership has not expired."""
        check_group_name(group)
        self._check_open()
        shard, keys = self._group_route(group)

        async def read() -> list[bytes]:
            client = await shard.node_client(keys[0])
            return await client.zrangebyscore(keys[0], time.time(), "+inf")

        members = await self._run(shard, read)
        return [member.decode() for member in members]
