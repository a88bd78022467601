"""The Redis channel layer: channels and groups on Redis servers, shared by processes.

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
    a sorted set of member channels scored by membership expiry, and ``gc:{<group>}`` the hash
    of each member's capacity (fixed at ``group_add``, so a group send needs no glob matching);
``f:{<channel>}`` and ``f:{<process prefix>}``
    counters of sends refused at capacity (a hash by channel for a process prefix);
``d:{<channel>}`` and ``d:{<process prefix>}``
    counters of messages receivers dropped because they could not decrypt or read them.

With several ``hosts``, a consistent-hash ring places each channel (a process-specific one by
its process prefix) and each group on one of them; see :mod:`channels_redis.hosts`.

A send is one Lua script call (one round trip). A group send is one call on a one-server layer;
otherwise one call fetches the members and one call per server (per node of a Redis Cluster)
pushes to all of that server's members. A group send stores its message once per normal member
channel and once per process whose channels are members, naming those channels; the process
hands it to each of them when it pops the entry.

A receive registers a future and this process runs one popping task per Redis list it waits
on: ``BLPOP``, one message at a time, for a normal channel (its list is shared with other
processes, so nobody hoards it), and for a process list, which only this process reads, a
script that pops a whole batch and frees its capacity in one call, after a ``BLMOVE`` of the
list's head to its head that waits for an entry (it removes nothing, so every pop goes through
the script, which keeps the capacity counts exact).
Popping tasks are never cancelled mid-command, so a cancelled receive loses nothing: what is
popped for nobody is buffered for the next receive, and :meth:`close` puts what is buffered
back at the head of its list.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections import OrderedDict, deque
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from channels_core.exceptions import (
    ChannelFull,
    ImproperlyConfigured,
    LayerClosed,
    LayerUnavailable,
)
from channels_core.layers import BaseChannelLayer, LayerStats, hand_to_waiter
from channels_core.names import (
    check_channel_name,
    check_group_name,
    check_process_prefix,
    process_prefix,
)
from channels_core.serialization import pack, unpack

from . import scripts
from .crypto import MessageCipher
from .hosts import (
    BLOCK_SECONDS,
    DEFAULT_HOST,
    DEFAULT_MAX_CONNECTIONS,
    OUTAGE_ERRORS,
    HashRing,
    Script,
    Shard,
    make_shard,
)

logger = logging.getLogger(__name__)

# A process list's popping task takes at most this many entries (and about this many bytes)
# per script call.
_BATCH_COUNT = 1000
_BATCH_BYTES = 4 * 1024 * 1024
_ROUTE_CACHE_SIZE = 10_000
_LOGGED_CHANNELS_MAX = 1000


def _resolve(future: asyncio.Future | None, value: bool) -> None:
    if future is not None and not future.done():
        future.set_result(value)


class _PoppedList:
    """A Redis list this process pops from: its waiting receives and its popping task."""

    __slots__ = (
        "blocked",
        "channel",
        "client",
        "client_id",
        "connection",
        "counts",
        "key",
        "owner",
        "shard",
        "task",
        "waiting",
        "waiting_up",
        "wakeup",
    )  # fmt: skip

    def __init__(self, shard: Shard, key: str, counts: str, owner: str | None, channel: str):
        self.shard = shard
        self.key = key
        self.counts = counts
        self.owner = owner  # the process prefix of a process list, None for a normal channel
        self.channel = channel
        # Receives waiting for a message; one that is handed a message no longer counts, so
        # the popping task pops only for receives that wait (no hoarding).
        self.waiting = 0
        # While the popping task waits for a receive: the future a receive resolves.
        self.wakeup: asyncio.Future | None = None
        self.task: asyncio.Task | None = None
        self.connection: Any = None
        self.client: aioredis.Redis | None = None
        self.client_id: int | None = None
        self.blocked = False
        self.waiting_up = False


class RedisChannelLayer(BaseChannelLayer):
    """The ``redis`` layer: channels and groups on one or several Redis deployments.

    Extra options: ``hosts``, a list of Redis hosts (default ``['redis://127.0.0.1:6379/0']``;
    every form is in :mod:`channels_redis.hosts` and ``docs/redis.md``), ``prefix``, the start
    of every key this layer uses (default ``"channels:"``), ``symmetric_encryption_keys``,
    a list of keys that encrypt messages at rest (the first encrypts, all decrypt), and
    ``max_connections``, how many calls run at once per server and event loop (default 100;
    more wait for a free connection).
    """

    config_keys = ("hosts", "prefix", "symmetric_encryption_keys", "max_connections")

    def __init__(
        self,
        hosts: list[Any] | None = None,
        prefix: str = "channels:",
        symmetric_encryption_keys: list[str] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        **config: Any,
    ) -> None:
        super().__init__(**config)
        if (
            not isinstance(max_connections, int)
            or isinstance(max_connections, bool)
            or max_connections < 1
        ):
            raise ImproperlyConfigured(
                f"Redis layer option 'max_connections' is {max_connections!r}; it must be a "
                "positive integer, the calls that run at once per Redis server (such as 100); "
                "more calls wait for a free connection."
            )
        hosts = [DEFAULT_HOST] if hosts is None else hosts
        if not isinstance(hosts, (list, tuple)) or not hosts:
            raise ImproperlyConfigured(
                f"Redis layer option 'hosts' is {hosts!r}; it must be a non-empty list of "
                "hosts, such as ['redis://127.0.0.1:6379/0']."
            )
        if not isinstance(prefix, str) or not prefix or re.search(r"[{}]", prefix):
            raise ImproperlyConfigured(
                f"Redis layer option 'prefix' is {prefix!r}; it must be a non-empty string "
                "without braces (they mark Redis Cluster hash tags), such as 'channels:'."
            )
        self.prefix = prefix
        self.shards = [make_shard(host, max_connections) for host in hosts]
        names = [shard.name for shard in self.shards]
        if len(set(names)) != len(names):
            raise ImproperlyConfigured(
                f"Redis layer option 'hosts' names a server twice ({', '.join(names)}): list "
                "each server once."
            )
        self._ring = HashRing(names) if len(self.shards) > 1 else None
        self._cipher = (
            None if symmetric_encryption_keys is None else MessageCipher(symmetric_encryption_keys)
        )
        # Scripts are called with EVALSHA and loaded where missing (Shard.script).
        self._send_script = Script(scripts.SEND)
        self._push_many_script = Script(scripts.PUSH_MANY)
        self._push_many_cluster_script = Script(scripts.CLUSTER_FLAGS + scripts.PUSH_MANY)
        self._members_script = Script(scripts.GROUP_MEMBERS)
        self._group_send_local_script = Script(scripts.GROUP_SEND_LOCAL)
        self._group_add_script = Script(scripts.GROUP_ADD)
        self._group_discard_script = Script(scripts.GROUP_DISCARD)
        self._pop_batch_script = Script(scripts.POP_BATCH)
        self._push_back_script = Script(scripts.PUSH_BACK)
        self._count_dropped_script = Script(scripts.COUNT_DROPPED)
        self._closed = False
        self._routes: dict[str, tuple[Shard, tuple[str, str, str, str]]] = {}
        # Popped but not yet received messages, per channel: (expires_at, packed message),
        # decrypted.
        self._buffers: dict[str, deque[tuple[float, bytes]]] = {}
        # Per process prefix: the channels with buffered messages, in arrival order.
        self._ready: dict[str, OrderedDict[str, None]] = {}
        # Futures of waiting receives, per channel and (receive_prefix) per process prefix.
        self._waiters: dict[str, deque[asyncio.Future]] = {}
        self._prefix_waiters: dict[str, deque[asyncio.Future]] = {}
        self._lists: dict[str, _PoppedList] = {}
        #: Messages this process dropped because no key decrypted them (or they were not
        #: messages at all); every process's drops are counted in Redis too, for stats().
        self.undecryptable_count = 0
        self._undecryptable_logged: set[str] = set()
        # Drops per channel not yet counted in Redis, and the task counting them there.
        self._dropped: dict[str, int] = {}
        self._counting: asyncio.Task | None = None

    # Routing ----------------------------------------------------------------------------

    def _shard_for(self, name: str) -> Shard:
        if self._ring is None:
            return self.shards[0]
        return self.shards[self._ring.index(name)]

    def _route(self, channel: str) -> tuple[Shard, tuple[str, str, str, str]]:
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
            route = (self._shard_for(tag), keys)
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[channel] = route
        return route

    def _group_route(self, group: str) -> tuple[Shard, list[str]]:
        return self._shard_for(group), [
            f"{self.prefix}g:{{{group}}}",
            f"{self.prefix}gc:{{{group}}}",
        ]

    async def _run(self, shard: Shard, call: Any, queued: bool = True) -> Any:
        """``shard.run(call, queued)``, but LayerClosed once this layer is closed."""
        try:
            return await shard.run(call, queued)
        except LayerUnavailable:
            self._check_open()
            raise

    async def _script(
        self,
        shard: Shard,
        script: Script,
        keys: list[str] | tuple[str, ...],
        args: list[Any],
        client: Any = None,
    ) -> Any:
        return await self._run(shard, functools.partial(shard.script, script, keys, args, client))

    # Sending ----------------------------------------------------------------------------

    def _encode(self, message: dict) -> bytes:
        data = pack(message, self.max_message_size)
        if self._cipher is not None:
            data = self._cipher.encrypt(data)
        return data

    def _push_args(self, data: bytes) -> list[Any]:
        now = time.time()
        return [repr(now), repr(now + self.expiry), int(self.expiry) + 1, data]

    async def send(self, channel: str, message: dict) -> None:
        """Put *message* on *channel*; see :meth:`BaseChannelLayer.send`."""
        check_channel_name(channel)
        data = self._encode(message)
        self._check_open()
        capacity = self.capacity_for(channel)
        shard, keys = self._route(channel)
        full = await self._script(
            shard, self._send_script, keys[:3], [*self._push_args(data), channel, capacity]
        )
        if full:
            raise ChannelFull(
                f"Channel {channel!r} holds {capacity} messages, its capacity: receive from it "
                "faster, retry later, or raise its capacity (capacity or channel_capacity)."
            )

    # Receiving --------------------------------------------------------------------------

    async def receive(self, channel: str) -> dict:
        """Wait for the next message on *channel*; see :meth:`BaseChannelLayer.receive`."""
        check_channel_name(channel)
        while True:
            if self._closed:
                raise self._closed_error()
            data = self._take(channel) if channel in self._buffers else None
            if data is None:
                _, data = await self._wait(self._popped_list(channel), self._waiters, channel)
            message = self._decode(channel, data)
            if message is not None:
                return message

    async def receive_prefix(self, prefix: str) -> tuple[str, dict]:
        """Wait for a message on any channel under *prefix* (``specific.XXXX!``)."""
        check_process_prefix(prefix)
        while True:
            self._check_open()
            channel, data = self._take_ready(prefix)
            if data is None:
                channel, data = await self._wait(
                    self._popped_list(prefix), self._prefix_waiters, prefix
                )
            message = self._decode(channel, data)
            if message is not None:
                return channel, message

    def _take(self, channel: str) -> bytes | None:
        """The next unexpired buffered message of *channel*, or None."""
        buffer = self._buffers.get(channel)
        if buffer is None:
            return None
        now = time.time()
        while buffer:
            expires_at, data = buffer.popleft()
            if not buffer:
                del self._buffers[channel]
                if "!" in channel:
                    owner = process_prefix(channel)
                    ready = self._ready[owner]
                    del ready[channel]
                    if not ready:
                        del self._ready[owner]
            if expires_at > now:
                return data
        return None

    def _take_ready(self, owner: str) -> tuple[str, bytes | None]:
        """A buffered message of any channel of *owner*: ``(channel, data)``, data None if none."""
        ready = self._ready.get(owner)
        while ready:
            channel = next(iter(ready))
            data = self._take(channel)
            if data is not None:
                return channel, data
        return "", None

    def _decode(self, channel: str, data: bytes) -> dict | None:
        """The message in (decrypted) *data*, or None, dropped, if it is not one."""
        try:
            message = unpack(data)
        except ValueError:
            message = None
        if isinstance(message, dict):
            return message
        self._drop(channel, decrypted=True)
        return None

    def _drop(self, channel: str, decrypted: bool) -> None:
        """Count a message of *channel* dropped as unreadable; log once per channel."""
        self.undecryptable_count += 1
        self._dropped[channel] = self._dropped.get(channel, 0) + 1
        if self._counting is None:
            self._counting = asyncio.get_running_loop().create_task(self._count_dropped())
        if channel not in self._undecryptable_logged:
            if len(self._undecryptable_logged) >= _LOGGED_CHANNELS_MAX:
                self._undecryptable_logged.clear()
            self._undecryptable_logged.add(channel)
            logger.error(
                "A message on channel %r could not be %s, so it was dropped: every process "
                "sharing this Redis prefix needs the same symmetric_encryption_keys (the old "
                "key kept after the new one while rotating). Later failures on this channel "
                "are counted (layer.undecryptable_count, and 'dropped' in stats), not logged.",
                channel,
                "decrypted with any of the layer's symmetric_encryption_keys"
                if not decrypted
                else "read as a message (is it encrypted? this layer has no "
                "symmetric_encryption_keys)"
                if self._cipher is None
                else "read as a message",
            )

    async def _count_dropped(self) -> None:
        """Add the drops not yet counted in Redis to their channels' counters there, until
        none is left (the task :meth:`_drop` starts).

        Best effort: a server that cannot be reached keeps them in this process's
        ``undecryptable_count`` only.
        """
        try:
            while self._dropped:
                dropped, self._dropped = self._dropped, {}
                for channel, count in dropped.items():
                    shard, keys = self._route(channel)
                    args = [channel, count, int("!" in channel)]
                    try:
                        await self._script(shard, self._count_dropped_script, keys[3:], args)
                    except LayerUnavailable as error:
                        logger.warning(
                            "%d dropped messages of channel %r are not counted in Redis: %s",
                            count,
                            channel,
                            error,
                        )
        finally:
            self._counting = None

    async def _drops_counted(self) -> None:
        """Wait until every drop so far is counted in Redis."""
        if self._counting is not None:
            await asyncio.shield(self._counting)

    def _popped_list(self, name: str) -> _PoppedList:
        """The popped list serving *name*: a channel, or a process prefix."""
        shard, keys = self._route(name)
        popped = self._lists.get(keys[0])
        if popped is None:
            owner = process_prefix(name) if "!" in name else None
            popped = self._lists[keys[0]] = _PoppedList(shard, keys[0], keys[1], owner, name)
        return popped

    async def _wait(
        self, popped: _PoppedList, waiters: dict[str, deque[asyncio.Future]], name: str
    ) -> tuple[str, bytes]:
        """Wait for the popping task of *popped* to hand over a message for *name*."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        queue = waiters.get(name)
        if queue is None:
            queue = waiters[name] = deque()
        queue.append(future)
        popped.waiting += 1
        wakeup = popped.wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(True)
        if popped.task is None:
            popped.task = loop.create_task(self._pop_loop(popped))
        try:
            handed = await future
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Handed over, then cancelled before this receive ran: keep it for the next.
                self._deliver(popped, *future.result(), front=True)
            else:
                # Not handed a message (which would have taken it out of the queue and the
                # count).
                popped.waiting -= 1
                if future in queue:
                    queue.remove(future)
                if not queue and waiters.get(name) is queue:
                    del waiters[name]
            raise
        return handed[0], handed[2]

    def _deliver(
        self,
        popped: _PoppedList,
        channel: str,
        expires_at: float,
        data: bytes,
        front: bool = False,
    ) -> None:
        """Hand a popped message to a waiting receive of *popped*, or buffer it."""
        owner = popped.owner
        handed = (channel, expires_at, data)
        if hand_to_waiter(self._waiters, channel, handed) or (
            owner is not None and hand_to_waiter(self._prefix_waiters, owner, handed)
        ):
            popped.waiting -= 1
            return
        buffer = self._buffers.get(channel)
        if buffer is None:
            buffer = self._buffers[channel] = deque()
        if front:
            buffer.appendleft((expires_at, data))
        else:
            buffer.append((expires_at, data))
        if owner is not None:
            ready = self._ready.get(owner)
            if ready is None:
                ready = self._ready[owner] = OrderedDict()
            ready[channel] = None

    def _dispatch(self, popped: _PoppedList, entry: bytes, now: float) -> None:
        """Deliver one popped *entry* unless expired."""
        expires_text, _, rest = entry.partition(b"|")
        if popped.owner is None:
            names, data = b"", rest
        else:
            names, _, data = rest.partition(b"|")
        expires_at = float(expires_text)
        if expires_at <= now:
            return
        if popped.owner is None:
            channels = [popped.channel]
        elif b"," in names:
            channels = names.decode().split(",")
        else:
            channels = [names.decode()]
        if self._cipher is not None:
            # Once per entry, however many channels it is for.
            data = self._cipher.decrypt(data)
            if data is None:
                for channel in channels:
                    self._drop(channel, decrypted=False)
                return
        deliver = self._deliver
        for channel in channels:
            deliver(popped, channel, expires_at, data)

    async def _pop_loop(self, popped: _PoppedList) -> None:
        """Pop *popped*'s list while receives wait on it; wait out outages of its server."""
        try:
            while not self._closed:
                try:
                    if not await self._pop_some(popped):
                        return
                except LayerUnavailable:
                    if popped.shard.down_since is None or self._closed:
                        raise
                    self._release(popped)
                    popped.waiting_up = True
                    try:
                        await popped.shard.wait_up()
                    finally:
                        popped.waiting_up = False
        except LayerUnavailable as error:
            # Not an outage (bad credentials, a refused command): the receives must know.
            self._fail_waiters(popped, error)
        finally:
            self._release(popped)
            popped.task = None
            if self._lists.get(popped.key) is popped:
                del self._lists[popped.key]

    async def _pop_some(self, popped: _PoppedList) -> bool:
        """Pop while receives wait; False once none has come for a while, or when closed."""
        while True:
            while not popped.waiting:
                if self._closed or not await self._wait_for_receive(popped):
                    return False
            if self._closed:
                return False
            await self._run(popped.shard, functools.partial(self._pop, popped), queued=False)

    @staticmethod
    async def _wait_for_receive(popped: _PoppedList) -> bool:
        """Wait a while for a receive on *popped*'s list; False if none comes."""
        loop = asyncio.get_running_loop()
        popped.wakeup = loop.create_future()
        timer = loop.call_later(BLOCK_SECONDS, _resolve, popped.wakeup, False)
        try:
            return await popped.wakeup
        finally:
            timer.cancel()
            popped.wakeup = None

    async def _pop(self, popped: _PoppedList) -> None:
        """One round trip on *popped*'s own connection, delivering what it pops.

        A normal channel's list: one ``BLPOP``. A process list: a ``BLMOVE`` of the list's
        head to its head, which removes nothing but waits until the list holds an entry,
        pipelined with the script that pops a batch and frees its capacity: every pop of a
        process list goes through that script, so its channels' counts stay exact.
        """
        connection = await self._connection(popped)
        if popped.owner is None:
            command = hiredis.pack_command((b"BLPOP", popped.key, BLOCK_SECONDS))
        else:
            script = self._pop_batch_script
            keys_and_args = (popped.key, popped.counts, _BATCH_COUNT, _BATCH_BYTES)
            command = hiredis.pack_command(
                (b"BLMOVE", popped.key, popped.key, b"LEFT", b"LEFT", BLOCK_SECONDS)
            ) + hiredis.pack_command((b"EVALSHA", script.sha, 2, *keys_and_args))
        popped.blocked = True
        try:
            await connection.send_packed_command(command, False)
            reply = await connection.read_response()
            if popped.owner is not None:
                popped.blocked = False
                try:
                    reply = await connection.read_response()
                except NoScriptError:
                    await connection.send_packed_command(
                        hiredis.pack_command((b"SCRIPT", b"LOAD", script.text)), False
                    )
                    await connection.read_response()
                    reply = None
        except BaseException:
            # The connection is in an unknown state; never reuse it.
            popped.connection = None
            await popped.shard.discard(connection)
            raise
        finally:
            popped.blocked = False
        if not reply:
            return
        now = time.time()
        if popped.owner is None:
            self._dispatch(popped, reply[1], now)
            return
        await self._yield_to_woken()
        for entry in reply:
            self._dispatch(popped, entry, now)

    @staticmethod
    async def _yield_to_woken() -> None:
        """Let the tasks already woken run before a process list's entry is handed over.

        An entry of a group send may wake a thousand receives, and the task that made that
        group send (its reply came with the entry) would otherwise make its next call only
        after all of them: Redis would sit idle while they run, then this process while Redis
        runs that next call.
        """
        await asyncio.sleep(0)

    async def _connection(self, popped: _PoppedList) -> Any:
        """*popped*'s own connection (its server's client id known, for CLIENT UNBLOCK)."""
        if popped.connection is None:
            popped.client = await popped.shard.node_client(popped.key)
            connection = await popped.shard.connection(popped.client)
            try:
                await connection.send_packed_command(hiredis.pack_command((b"CLIENT", b"ID")))
                popped.client_id = await connection.read_response()
            except BaseException:
                await popped.shard.discard(connection)
                raise
            popped.connection = connection
        return popped.connection

    def _release(self, popped: _PoppedList) -> None:
        connection, popped.connection = popped.connection, None
        if connection is not None:
            popped.shard.release(popped.client, connection)

    def _fail_waiters(self, popped: _PoppedList, error: Exception) -> None:
        if popped.owner is None:
            queues = [self._waiters.pop(popped.channel, ())]
        else:
            queues = [self._prefix_waiters.pop(popped.owner, ())]
            queues += [
                self._waiters.pop(channel)
                for channel in list(self._waiters)
                if channel.startswith(popped.owner)
            ]
        for queue in queues:
            for future in queue:
                if not future.done():
                    future.set_exception(error)

    # Groups -----------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add *channel* to *group*, or renew its membership."""
        check_group_name(group)
        check_channel_name(channel)
        self._check_open()
        shard, keys = self._group_route(group)
        args = [channel, repr(time.time() + self.group_expiry), self.capacity_for(channel)]
        await self._script(shard, self._group_add_script, keys, [*args, int(self.group_expiry) + 1])

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; nothing happens when it is not a member."""
        check_group_name(group)
        check_channel_name(channel)
        self._check_open()
        shard, keys = self._group_route(group)
        await self._script(shard, self._group_discard_script, keys, [channel])

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
        if self._ring is None and not shard.is_cluster:
            full = await self._script(
                shard, self._group_send_local_script, keys, [*push_args, self.prefix]
            )
        else:
            flat = await self._script(shard, self._members_script, keys, [push_args[0]])
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
                    self._push_many_cluster_script if shard.is_cluster else self._push_many_script,
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

    # Lifecycle and statistics -----------------------------------------------------------

    async def _keys(self) -> list[tuple[Shard, aioredis.Redis, list[bytes]]]:
        """Every key of this layer: (shard, server client, keys) per server."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "*"
        found = []
        for shard in self.shards:

            async def scan(shard: Shard = shard) -> list:
                return [
                    (client, [key async for key in client.scan_iter(match=pattern, count=1000)])
                    for client in await shard.node_clients()
                ]

            found += [(shard, client, keys) for client, keys in await self._run(shard, scan)]
        return found

    async def flush(self) -> None:
        """Delete every key under this layer's prefix and every buffered message."""
        self._check_open()
        for shard, client, keys in await self._keys():
            if keys:

                async def delete(client: aioredis.Redis = client, keys: list = keys) -> None:
                    async with client.pipeline(transaction=False) as pipe:
                        for key in keys:
                            pipe.unlink(key)
                        await pipe.execute()

                await self._run(shard, delete)
        self._buffers.clear()
        self._ready.clear()

    async def close(self) -> None:
        """Close the layer without losing messages: see the module documentation.

        Waiting receives raise LayerClosed, as do later calls. In-flight pops are let finish
        (a ``BLPOP`` or ``BLMOVE`` is woken with ``CLIENT UNBLOCK``), then every popped but
        unreceived message goes back to the head of its list, in order.
        """
        if self._closed:
            return
        self._closed = True
        for waiters in (self._waiters, self._prefix_waiters):
            for queue in waiters.values():
                for future in queue:
                    if not future.done():
                        future.set_exception(self._closed_error())
            waiters.clear()
        tasks = [popped.task for popped in self._lists.values() if popped.task is not None]
        for popped in self._lists.values():
            _resolve(popped.wakeup, True)
        for popped in list(self._lists.values()):
            if popped.waiting_up and popped.task is not None:
                popped.task.cancel()
        await self._unblock_pops(tasks)
        await self._drops_counted()
        await self._push_back_buffers()
        for shard in self.shards:
            await shard.close()

    async def _unblock_pops(self, tasks: list[asyncio.Task]) -> None:
        """Wake this layer's blocked ``BLPOP`` and ``BLMOVE`` commands; wait for their tasks."""
        deadline = time.monotonic() + BLOCK_SECONDS + 1
        while tasks and time.monotonic() < deadline:
            for popped in list(self._lists.values()):
                if popped.blocked and popped.client_id is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await popped.client.execute_command("CLIENT", "UNBLOCK", popped.client_id)
            _, pending = await asyncio.wait(tasks, timeout=0.05)
            tasks = list(pending)
        for task in tasks:
            # Past the bound (a server that stopped answering): give up on this pop.
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _push_back_buffers(self) -> None:
        """Put every buffered message back at the head of its Redis list, in order."""
        by_list: dict[str, tuple[Shard, str, bool, list[bytes]]] = {}
        for channel, buffer in self._buffers.items():
            shard, keys = self._route(channel)
            process = "!" in channel
            entries = by_list.setdefault(keys[0], (shard, keys[1], process, []))[3]
            middle = f"|{channel}|".encode() if process else b"|"
            cipher = self._cipher
            for expires_at, data in buffer:
                stored = data if cipher is None else cipher.encrypt(data)
                entries.append(repr(expires_at).encode() + middle + stored)
        self._buffers.clear()
        self._ready.clear()
        ttl = int(self.expiry) + 1
        for key, (shard, counts, process, entries) in by_list.items():
            try:
                await shard.run(
                    functools.partial(
                        shard.script,
                        self._push_back_script,
                        [key, counts],
                        [ttl, int(process), *entries],
                    )
                )
            except (LayerUnavailable, *OUTAGE_ERRORS) as error:
                logger.error(
                    "Closing the layer could not put %d received but unread messages back on "
                    "Redis list %s (%s); they are lost.",
                    len(entries),
                    key,
                    error,
                )

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    @staticmethod
    def _closed_error() -> LayerClosed:
        return LayerClosed("The channel layer is closed: build a new layer to go on.")

    async def stats(self, channel: str | None = None) -> LayerStats:
        """Messages pending, the oldest one's age, refused sends and dropped messages, of
        *channel* or of the whole layer (every process's refusals and drops)."""
        self._check_open()
        await self._drops_counted()
        if channel is not None:
            check_channel_name(channel)
            shard, (list_key, _, full_key, dropped_key) = self._route(channel)
            client = await self._run(shard, functools.partial(shard.node_client, list_key))
            counters = [full_key.encode(), dropped_key.encode()]
            targets = [(shard, client, [list_key.encode()], counters)]
        else:
            targets = []
            for shard, client, keys in await self._keys():
                kinds = [(key, key[len(self.prefix) : len(self.prefix) + 3]) for key in keys]
                lists = [key for key, kind in kinds if kind in (b"c:{", b"p:{")]
                counters = [key for key, kind in kinds if kind in (b"f:{", b"d:{")]
                targets.append((shard, client, lists, counters))
        entries: list[tuple[str, float]] = []
        counts = {b"f": 0, b"d": 0}
        for shard, client, lists, counters in targets:

            async def read(client: aioredis.Redis = client, lists=lists, counters=counters) -> list:
                async with client.pipeline(transaction=False) as pipe:
                    for key in lists:
                        pipe.lrange(key, 0, -1)
                    for key in counters:
                        if b"!" in key and channel:
                            pipe.hget(key, channel)
                        elif b"!" in key:
                            pipe.hvals(key)
                        else:
                            pipe.get(key)
                    return await pipe.execute()

            replies = await self._run(shard, read)
            for key, items in zip(lists, replies, strict=False):
                for entry in items:
                    entries += self._parse(key, entry)
            for key, value in zip(counters, replies[len(lists) :], strict=True):
                values = value if isinstance(value, list) else [value]
                counts[key[len(self.prefix) : len(self.prefix) + 1]] += sum(
                    int(count or 0) for count in values
                )
        if channel is not None:
            entries = [entry for entry in entries if entry[0] == channel]
        for name, buffer in self._buffers.items():
            if channel is None or name == channel:
                entries.extend((name, expires_at) for expires_at, _ in buffer)
        now = time.time()
        live = [expires_at for _, expires_at in entries if expires_at > now]
        oldest_age = None
        if live:
            oldest_age = max(0.0, now - (min(live) - self.expiry))
        return LayerStats(
            pending=len(live),
            oldest_age=oldest_age,
            full_count=counts[b"f"],
            dropped=counts[b"d"],
        )

    def _parse(self, key: bytes, entry: bytes) -> list[tuple[str, float]]:
        """The channels and expiry time of a stored *entry* of *key*: one pair per channel
        (a group send's entry in a process list is a message for each of its channels)."""
        expires_text, _, rest = entry.partition(b"|")
        expires_at = float(expires_text)
        if key[len(self.prefix) :].startswith(b"p:"):
            names = rest.partition(b"|")[0].decode().split(",")
            return [(name, expires_at) for name in names]
        return [(key[len(self.prefix) + 3 : -1].decode(), expires_at)]
