"""The Redis channel layer: channels and groups on Redis servers, shared by processes.

:class:`RedisChannelLayer` sends, receives, closes and counts the messages it cannot read; it
composes the other modules, each one job:

- :mod:`channels_redis.keys`: which server and which Redis keys a channel or a group maps to
  (the key layout is documented there);
- :mod:`channels_redis.waiters`: receives waiting on channels, and messages buffered for none;
- :mod:`channels_redis.popping`: the tasks that pop this process's Redis lists for them;
- :mod:`channels_redis.groups`: ``group_add``, ``group_discard``, ``group_send``, and the
  presence and history of groups, with :mod:`channels_redis.presence` (the heartbeat of this
  process's present members) and :mod:`channels_redis.history`;
- :mod:`channels_redis.stats`: ``stats()``;
- :mod:`channels_redis.delays`: delayed messages (``asgi.delay``), kept in Redis until due;
- :mod:`channels_redis.hosts` and :mod:`channels_redis.host_forms`: the servers, their circuit
  breakers and the hash ring; :mod:`channels_redis.scripts`: the Lua scripts;
  :mod:`channels_redis.crypto`: encryption at rest.

A send is one Lua script call (one round trip). A receive registers a future and this process
runs one popping task per Redis list it waits on. Popping tasks are never cancelled
mid-command, so a cancelled receive loses nothing: what is popped for nobody is buffered for
the next receive, and :meth:`RedisChannelLayer.close` puts what is buffered back at the head of
its list.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from typing import Any

import redis.asyncio as aioredis

from channels_core.exceptions import (
    ChannelFull,
    ImproperlyConfigured,
    LayerClosed,
    LayerUnavailable,
)
from channels_core.layers import BaseChannelLayer, LayerStats
from channels_core.names import check_channel_name, check_process_prefix, random_suffix
from channels_core.serialization import pack, unpack

from . import scripts
from .crypto import MessageCipher
from .delays import RedisDelays
from .groups import RedisGroups
from .history import split_position
from .host_forms import DEFAULT_HOST, make_shard
from .hosts import CALL_TIMEOUT, DEFAULT_MAX_CONNECTIONS, OUTAGE_ERRORS, Script, Shard
from .keys import KeyRouter
from .popping import Popper
from .presence import Heartbeat
from .stats import StatsReader
from .waiters import Waiters

logger = logging.getLogger(__name__)

_LOGGED_CHANNELS_MAX = 1000
# Scripts are called with EVALSHA and loaded where missing (Shard.script).
_SEND = Script(scripts.SEND)
_PUSH_BACK = Script(scripts.PUSH_BACK)
_COUNT_DROPPED = Script(scripts.COUNT_DROPPED)


class RedisChannelLayer(RedisGroups, RedisDelays, BaseChannelLayer):
    """The ``redis`` layer: channels and groups on one or several Redis deployments.

    Extra options: ``hosts``, a list of Redis hosts (default ``['redis://127.0.0.1:6379/0']``;
    every form is in :mod:`channels_redis.host_forms` and ``docs/redis.md``), ``prefix``, the
    start of every key this layer uses (default ``"channels:"``), ``symmetric_encryption_keys``,
    a list of keys that encrypt messages at rest (the first encrypts, all decrypt), and
    ``max_connections``, how many calls run at once per server and event loop (default 100;
    more wait for a free connection). It has presence and group history (the ``history`` and
    ``presence_timeout`` options), kept in Redis: see :mod:`channels_redis.presence` and
    :mod:`channels_redis.history`.
    """

    extensions = (*BaseChannelLayer.extensions, "presence", "history", "delay")
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
        hosts = [DEFAULT_HOST] if hosts is None else hosts
        _check_options(hosts, prefix, max_connections)
        self.prefix = prefix
        self.shards = [make_shard(host, max_connections) for host in hosts]
        names = [shard.name for shard in self.shards]
        if len(set(names)) != len(names):
            raise ImproperlyConfigured(
                f"Redis layer option 'hosts' names a server twice ({', '.join(names)}): list "
                "each server once."
            )
        self._cipher = (
            None if symmetric_encryption_keys is None else MessageCipher(symmetric_encryption_keys)
        )
        self._closed = False
        #: Messages this process dropped because no key decrypted them (or they were not
        #: messages at all); every process's drops are counted in Redis too, for stats().
        self.undecryptable_count = 0
        self._undecryptable_logged: set[str] = set()
        # Drops per channel not yet counted in Redis, and the task counting them there.
        self._dropped: dict[str, int] = {}
        self._counting: asyncio.Task | None = None
        self._router = KeyRouter(prefix, self.shards)
        self._waiting = Waiters()
        instance = random_suffix()
        self._popper = Popper(
            self._router.route,
            self._run,
            self._waiting,
            self._cipher,
            self._drop,
            functools.partial(self._router.inflight_key, popper=instance),
            int(self.expiry) + 1,
        )
        self._stats = StatsReader(self._router, self._run, self._waiting)
        self._heartbeat = Heartbeat(instance, self._router, self._run, self.presence_timeout)
        # What sends, receives and group sends use, bound here once so that they reach it as
        # directly as the layer's own methods and attributes (no lookup through a helper).
        self._route = self._router.route
        self._group_route = self._router.group_route
        self._one_server = len(self.shards) == 1 and not self.shards[0].is_cluster
        self._buffers = self._waiting.buffers
        self._waiters = self._waiting.by_channel
        self._prefix_waiters = self._waiting.by_prefix
        self._take = self._waiting.take
        self._take_ready = self._waiting.take_ready
        self._popped_list = self._popper.popped_list
        self._wait = self._popper.wait

    async def _run(
        self, shard: Shard, call: Any, queued: bool = True, bound: float = CALL_TIMEOUT
    ) -> Any:
        """``shard.run(call, queued, bound)``, but LayerClosed once this layer is closed."""
        try:
            return await shard.run(call, queued, bound)
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
            shard, _SEND, keys[:3], [*self._push_args(data), channel, capacity]
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
        self.check_receivable(channel)
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
        self.check_receivable(prefix)
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

    # Unreadable messages ----------------------------------------------------------------

    def _decode(self, channel: str, data: bytes) -> dict | None:
        """The message in (decrypted) *data*, or None, dropped, if it is not one; a message
        of a group with history gets its position (see :mod:`channels_redis.history`)."""
        position = None
        try:
            if data[:1] == b"@":
                position, data = split_position(data)
            message = unpack(data)
        except ValueError:
            message = None
        if isinstance(message, dict):
            if position is not None:
                message["position"] = position
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
                        await self._script(shard, _COUNT_DROPPED, keys[3:], args)
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

    # Lifecycle and statistics -----------------------------------------------------------

    async def flush(self) -> None:
        """Delete every key under this layer's prefix and every buffered message."""
        self._check_open()
        for shard, client, keys in await self._router.every_key(self._run):
            if keys:

                async def delete(client: aioredis.Redis = client, keys: list = keys) -> None:
                    async with client.pipeline(transaction=False) as pipe:
                        for key in keys:
                            pipe.unlink(key)
                        await pipe.execute()

                await self._run(shard, delete)
        self._waiting.clear_buffers()

    async def close(self) -> None:
        """Close the layer without losing messages: see the module documentation.

        Waiting receives raise LayerClosed, as do later calls. The presence heartbeat stops
        and is deleted, so this layer's present members leave the presence at once. In-flight
        pops are let finish (a ``BLPOP`` or ``BLMOVE`` is woken with ``CLIENT UNBLOCK``), then
        every popped but unreceived message goes back to the head of its list, in order.
        """
        if self._closed:
            return
        self._closed = True
        self._waiting.fail_all(self._closed_error)
        await self._heartbeat.stop()
        await self._popper.stop()
        await self._drops_counted()
        await self._push_back_buffers()
        for shard in self.shards:
            await shard.close()

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
        self._waiting.clear_buffers()
        ttl = int(self.expiry) + 1
        for key, (shard, counts, process, entries) in by_list.items():
            try:
                await shard.run(
                    functools.partial(
                        shard.script, _PUSH_BACK, [key, counts], [ttl, int(process), *entries]
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
        return await self._stats.read(channel, self.expiry)


def _check_options(hosts: Any, prefix: Any, max_connections: Any) -> None:
    """Raise ImproperlyConfigured for a bad ``hosts``, ``prefix`` or ``max_connections``."""
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
