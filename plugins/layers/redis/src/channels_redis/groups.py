"""Groups: ``group_add``, ``group_discard``, ``group_send``, ``group_members``, and the
presence and history of groups (``group_presence``, ``group_history``).

A group is a sorted set of member channels scored by membership expiry, a hash of each
member's capacity and a hash of its present members' presence (see :mod:`channels_redis.keys`).
A group send is one Lua script call on a one-server layer; otherwise one call fetches the
members and one call per server (per node of a Redis Cluster) pushes to all of that server's
members. A group send stores its message once per normal member channel and once per process
whose channels are members, naming those channels; the process hands it to each of them when
it pops the entry. A group with history keeps the message in the call that fetches its members
(:mod:`channels_redis.history`); presence is in :mod:`channels_redis.presence`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels_core.history import History, Position, check_presence_info
from channels_core.names import check_channel_name, check_group_name

from . import scripts
from .crypto import read_packed
from .history import keep_args, positioned, read_history
from .hosts import Script, Shard
from .presence import alive_processes

logger = logging.getLogger(__name__)

# Scripts are called with EVALSHA and loaded where missing (Shard.script).
_PUSH_MANY = Script(scripts.PUSH_MANY)
_PUSH_MANY_CLUSTER = Script(scripts.CLUSTER_FLAGS + scripts.PUSH_MANY)
_MEMBERS = Script(scripts.GROUP_MEMBERS)
_GROUP_SEND_LOCAL = Script(scripts.GROUP_SEND_LOCAL)
_GROUP_ADD = Script(scripts.GROUP_ADD)
_GROUP_DISCARD = Script(scripts.GROUP_DISCARD)
_GROUP_PRESENCE = Script(scripts.GROUP_PRESENCE)
_FORGET_PRESENCE = Script(scripts.FORGET_PRESENCE)
_GROUP_HISTORY = Script(scripts.GROUP_HISTORY)


class RedisGroups:
    """The group methods of :class:`~channels_redis.layer.RedisChannelLayer`.

    A mixin rather than a helper object, so that a group send is a method of the layer, as
    direct as a send. It uses the layer's ``prefix``, ``group_expiry``, ``history``,
    ``capacity_for``, ``_route``, ``_group_route``, ``_router``, ``_one_server``, ``_encode``,
    ``_push_args``, ``_run``, ``_script``, ``_cipher``, ``_heartbeat`` and ``_check_open``.
    """

    async def group_add(self, group: str, channel: str, presence: dict | None = None) -> None:
        """Add *channel* to *group*, or renew its membership; with *presence*, also make it
        present with that info, for as long as this layer's heartbeat is renewed."""
        check_group_name(group)
        check_channel_name(channel)
        heartbeat = self._heartbeat
        args = [channel, repr(time.time() + self.group_expiry), self.capacity_for(channel)]
        args.append(int(self.group_expiry) + 1)
        if presence is not None:
            info = self._encode(check_presence_info(presence))
            args.append(f"{heartbeat.process_id}|".encode() + info)
        self._check_open()
        shard, keys = self._group_route(group)
        if presence is None:
            await self._script(shard, _GROUP_ADD, keys[:3], args)
            return
        # The heartbeat is set with the member, not only by its thread, so that a member is
        # not taken for one of a dead process when Redis lost the heartbeat (a restart, a
        # flush) less than a renewal ago.
        await asyncio.gather(self._script(shard, _GROUP_ADD, keys[:3], args), heartbeat.beat())
        heartbeat.start()

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*, and from its presence; nothing happens when it is
        not a member."""
        check_group_name(group)
        check_channel_name(channel)
        self._check_open()
        shard, keys = self._group_route(group)
        await self._script(shard, _GROUP_DISCARD, keys[:3], [channel])

    async def group_send(self, group: str, message: dict) -> Position | None:
        """Send *message* to every member of *group*; full members are skipped and counted.

        A group with history keeps the message in the same call that fetches its members (on
        a one-server layer, the one call that delivers too), and its position is returned.
        Raises :class:`LayerUnavailable` when a server holding the group or some of its
        members cannot be reached; members on the other servers get the message.
        """
        check_group_name(group)
        data = self._encode(message)
        self._check_open()
        shard, keys = self._group_route(group)
        push_args = self._push_args(data)
        retention = self.history.for_group(group)
        keep = () if retention is None else keep_args(retention, self.group_expiry)
        if self._one_server:
            args = [*push_args, self.prefix, *keep]
            epoch, offset, full = await self._script(shard, _GROUP_SEND_LOCAL, keys, args)
        else:
            args = [push_args[0]] if retention is None else [push_args[0], data, *keep]
            reply = await self._script(shard, _MEMBERS, keys, args)
            epoch, offset = reply[0], reply[1]
            if offset:
                push_args[3] = positioned(epoch, offset, data)
            full = await self._push_to_members(reply[2:], push_args)
        if full:
            logger.debug("Group send to %r skipped %d full members.", group, full)
        return Position(epoch.decode(), offset) if offset else None

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

    async def group_presence(self, group: str) -> dict[str, dict]:
        """The present members of *group* whose membership has not expired and whose process
        still renews its heartbeat: ``{channel: info}``. The others' presence is removed."""
        check_group_name(group)
        self._check_open()
        shard, keys = self._group_route(group)
        flat = await self._script(shard, _GROUP_PRESENCE, [keys[0], keys[2]], [repr(time.time())])
        found = {}
        for index in range(0, len(flat), 2):
            process_id, _, info = flat[index + 1].partition(b"|")
            found[flat[index].decode()] = (process_id.decode(), info)
        alive = await alive_processes(
            self._router, self._run, {process_id for process_id, _ in found.values()}
        )
        present, stale, unreadable = {}, [], 0
        for index, (channel, (process_id, info)) in enumerate(found.items()):
            if process_id not in alive:
                stale += flat[2 * index : 2 * index + 2]
                continue
            content = read_packed(info, self._cipher)
            if content is None:
                unreadable += 1
            else:
                present[channel] = content
        if stale:
            await self._script(shard, _FORGET_PRESENCE, [keys[2]], stale)
        if unreadable:
            logger.error(
                "The presence info of %d members of group %r could not be read with this "
                "layer's symmetric_encryption_keys, so they are left out: every process "
                "sharing the prefix needs the same keys.",
                unreadable,
                group,
            )
        return present

    async def group_history(self, group: str, since: Position | None = None) -> History:
        """What *group* kept after *since*; see :meth:`BaseChannelLayer.group_history`."""
        check_group_name(group)
        retention = self.retention(group)
        since = Position.of(since)
        self._check_open()
        shard, keys = self._group_route(group)
        args = [retention.size or 0, retention.ttl_ms or 0, *(since or ("", 0))]
        reply = await self._script(shard, _GROUP_HISTORY, keys[3:], args)
        return read_history(reply, since, self._cipher)

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
