"""The Redis channel layer: channels and groups on one Redis server, shared by processes.

Keys, all under the layer's ``prefix``:

``c:<channel>``
    a list of entries ``<expires_at>|<packed message>`` for a normal channel;
``p:<process prefix>``
    one list per process prefix (``specific.XXXX!``) of entries
    ``<expires_at>|<channel>|<packed message>``, so one waiting pop serves every reply channel
    of a process; ``n:<process prefix>`` is a hash counting each channel's entries, for capacity;
``g:<group>``
    a sorted set of member channels scored by membership expiry, and ``gc:<group>`` the hash of
    each member's capacity (fixed at ``group_add``, so a group send needs no glob matching);
``full`` and ``full:<channel>``
    counters of sends refused at capacity.

A send or a group send is one Lua script (one round trip). A receive waits with ``BLPOP`` in a
task of its own, one per list in this process: a receive that is cancelled leaves the task
running, and what the task pops is buffered here for the next receive, so no message is lost
to a cancellation and every receiver of this process sees one list's messages in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from channels_core.exceptions import (
    ChannelFull,
    ImproperlyConfigured,
    InvalidChannelName,
    LayerClosed,
    LayerUnavailable,
)
from channels_core.layers import BaseChannelLayer, LayerStats
from channels_core.names import check_channel_name, check_group_name, process_prefix
from channels_core.serialization import pack, unpack

logger = logging.getLogger(__name__)

# A BLPOP waits this long (seconds) before its task checks whether anybody still waits; the
# socket timeout must be longer, or a quiet channel would look like a dead server.
_BLOCK_SECONDS = 1.0
_SOCKET_TIMEOUT = 5.0
_CONNECT_TIMEOUT = 2.0
# push(channel, capacity) appends the entry to the channel's list and returns 0, or counts a
# refused send and returns 1 when the channel is full. A per-channel refusal counter lives a
# day after its last increment.
_PUSH = """
local prefix, now, expires_at, ttl, payload = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local function push(channel, capacity)
  local bang = string.find(channel, '!', 1, true)
  local list, counts, entry, n
  if bang then
    local owner = string.sub(channel, 1, bang)
    list, counts = prefix .. 'p:' .. owner, prefix .. 'n:' .. owner
    entry = expires_at .. '|' .. channel .. '|' .. payload
    n = tonumber(redis.call('HGET', counts, channel) or '0')
  else
    list = prefix .. 'c:' .. channel
    entry = expires_at .. '|' .. payload
    n = redis.call('LLEN', list)
    -- Expired entries at the head do not hold capacity.
    while n >= capacity and n > 0 do
      local head = redis.call('LINDEX', list, 0)
      if tonumber(string.sub(head, 1, string.find(head, '|', 1, true) - 1)) > now then break end
      redis.call('LPOP', list)
      n = n - 1
    end
  end
  if n >= capacity then
    redis.call('INCR', prefix .. 'full')
    redis.call('INCR', prefix .. 'full:' .. channel)
    redis.call('EXPIRE', prefix .. 'full:' .. channel, 86400)
    return 1
  end
  redis.call('RPUSH', list, entry)
  redis.call('EXPIRE', list, ttl)
  if counts then
    redis.call('HINCRBY', counts, channel, 1)
    redis.call('EXPIRE', counts, ttl)
  end
  return 0
end
"""

# ARGV: prefix, now, expires_at, ttl, payload, channel, capacity.
_SEND = _PUSH + "return push(ARGV[6], tonumber(ARGV[7]))\n"

# ARGV: prefix, now, expires_at, ttl, payload, group. Returns how many members were full.
_GROUP_SEND = (
    _PUSH
    + """
local members_key, capacities_key = prefix .. 'g:' .. ARGV[6], prefix .. 'gc:' .. ARGV[6]
local expired = redis.call('ZRANGEBYSCORE', members_key, '-inf', now)
if #expired > 0 then
  redis.call('ZREM', members_key, unpack(expired))
  redis.call('HDEL', capacities_key, unpack(expired))
end
local members = redis.call('ZRANGE', members_key, 0, -1)
local full = 0
for _, channel in ipairs(members) do
  full = full + push(channel, tonumber(redis.call('HGET', capacities_key, channel) or '1'))
end
return full
"""
)


def _log_failure(fetch: asyncio.Task) -> None:
    if not fetch.cancelled() and fetch.exception() is not None:
        logger.debug("A Redis pop failed: %s", fetch.exception())


def _parse_host(host: Any) -> str:
    """The URL of one ``hosts`` entry: a ``redis://`` URL or a ``(host, port)`` pair."""
    if isinstance(host, str) and host.startswith(("redis://", "rediss://", "unix://")):
        return host
    if isinstance(host, (tuple, list)) and len(host) == 2 and isinstance(host[1], int):
        return f"redis://{host[0]}:{host[1]}/0"
    raise ImproperlyConfigured(
        f"Redis layer host {host!r} is neither a URL nor a (host, port) pair: use "
        "'redis://127.0.0.1:6379/0' or ('127.0.0.1', 6379)."
    )


class RedisChannelLayer(BaseChannelLayer):
    """The ``redis`` layer: channels and groups on a Redis server.

    Extra options: ``hosts``, a list with one Redis URL (``redis://host:port/db``) or
    ``(host, port)`` pair (default ``redis://127.0.0.1:6379/0``), and ``prefix``, the start
    of every key this layer uses (default ``"channels:"``).
    """

    config_keys = ("hosts", "prefix")

    def __init__(
        self, hosts: list[Any] | None = None, prefix: str = "channels:", **config: Any
    ) -> None:
        super().__init__(**config)
        hosts = ["redis://127.0.0.1:6379/0"] if hosts is None else hosts
        if not isinstance(hosts, (list, tuple)) or len(hosts) != 1:
            raise ImproperlyConfigured(
                f"Redis layer option 'hosts' is {hosts!r}; it must be a list of exactly one "
                "host (sharding over several is not supported yet), such as "
                "['redis://127.0.0.1:6379/0']."
            )
        if not isinstance(prefix, str) or not prefix:
            raise ImproperlyConfigured(
                f"Redis layer option 'prefix' is {prefix!r}; it must be a non-empty string "
                "such as 'channels:'."
            )
        self.url = _parse_host(hosts[0])
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            self.url,
            socket_timeout=_SOCKET_TIMEOUT,
            socket_connect_timeout=_CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._send_script = self._redis.register_script(_SEND)
        self._group_send_script = self._redis.register_script(_GROUP_SEND)
        self._closed = False
        # Popped but not yet received messages, per channel: (expires_at, packed message).
        self._buffers: dict[str, deque[tuple[float, bytes]]] = {}
        # Per process prefix: the channels with buffered messages, in arrival order.
        self._ready: dict[str, OrderedDict[str, None]] = {}
        # The popping task of each Redis list, and how many receives wait on it.
        self._fetches: dict[str, asyncio.Task] = {}
        self._waiting: dict[str, int] = {}

    # Sending ----------------------------------------------------------------------------

    async def send(self, channel: str, message: dict) -> None:
        """Put *message* on *channel*; see :meth:`BaseChannelLayer.send`."""
        check_channel_name(channel)
        data = pack(message, self.max_message_size)
        self._check_open()
        capacity = self.capacity_for(channel)
        full = await self._call(self._send_script, args=[*self._push_args(data), channel, capacity])
        if full:
            raise ChannelFull(
                f"Channel {channel!r} holds {capacity} messages, its capacity: receive from it "
                "faster, retry later, or raise its capacity (capacity or channel_capacity)."
            )

    def _push_args(self, data: bytes) -> list[Any]:
        now = time.time()
        return [self.prefix, repr(now), repr(now + self.expiry), int(self.expiry) + 1, data]

    async def _call(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one Redis call, turning connection failures into LayerUnavailable."""
        try:
            return await command(*args, **kwargs)
        except (RedisError, OSError) as error:
            if self._closed:
                raise self._closed_error() from error
            raise LayerUnavailable(
                f"The Redis server at {self.url} cannot be reached ({error}): start it, or "
                "fix the layer's 'hosts' option."
            ) from error

    # Receiving --------------------------------------------------------------------------

    async def receive(self, channel: str) -> dict:
        """Wait for the next message on *channel*; see :meth:`BaseChannelLayer.receive`."""
        check_channel_name(channel)
        if "!" in channel:
            key = f"{self.prefix}p:{process_prefix(channel)}"
        else:
            key = f"{self.prefix}c:{channel}"
        while True:
            self._check_open()
            data = self._take(channel)
            if data is not None:
                return unpack(data)
            await self._wait_fetch(key)

    async def receive_prefix(self, prefix: str) -> tuple[str, dict]:
        """Wait for a message on any channel under *prefix* (``specific.XXXX!``)."""
        check_channel_name(prefix)
        if not prefix.endswith("!"):
            raise InvalidChannelName(
                f"receive_prefix() takes a process prefix ending in '!', such as "
                f"'specific.Ab12!', not {prefix!r}: pass layer.process_prefix() or the part "
                "of a channel name up to and including its '!'."
            )
        key = f"{self.prefix}p:{prefix}"
        while True:
            self._check_open()
            ready = self._ready.get(prefix)
            while ready:
                channel = next(iter(ready))
                data = self._take(channel)
                if data is not None:
                    return channel, unpack(data)
            await self._wait_fetch(key)

    def _take(self, channel: str) -> bytes | None:
        """The next unexpired buffered message of *channel*, or None."""
        buffer = self._buffers.get(channel)
        now = time.time()
        while buffer:
            expires_at, data = buffer.popleft()
            if not buffer:
                del self._buffers[channel]
                if "!" in channel:
                    ready = self._ready[process_prefix(channel)]
                    del ready[channel]
            if expires_at > now:
                return data
        return None

    async def _wait_fetch(self, key: str) -> None:
        """Wait until the popping task of *key* (started if needed) has popped something."""
        fetch = self._fetches.get(key)
        if fetch is None:
            fetch = self._fetches[key] = asyncio.get_running_loop().create_task(self._fetch(key))
            # Its error is raised by the receives waiting on it; with none left, it is logged.
            fetch.add_done_callback(_log_failure)
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            # asyncio.wait, not await: cancelling this receive must not cancel the pop.
            await asyncio.wait([fetch])
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
        if fetch.cancelled():
            self._check_open()
        elif fetch.exception() is not None:
            raise fetch.exception()

    async def _fetch(self, key: str) -> None:
        """Pop one entry of *key* into the buffers; end early when nobody waits any more."""
        try:
            while True:
                popped = await self._call(self._redis.blpop, [key], timeout=_BLOCK_SECONDS)
                if popped is not None:
                    await self._buffer(key, popped[1])
                    return
                if not self._waiting.get(key):
                    return
        finally:
            if self._fetches.get(key) is asyncio.current_task():
                del self._fetches[key]

    async def _buffer(self, key: str, entry: bytes) -> None:
        expires_text, _, rest = entry.partition(b"|")
        expires_at = float(expires_text)
        if key.startswith(f"{self.prefix}p:"):
            owner = key[len(self.prefix) + 2 :]
            channel_bytes, _, data = rest.partition(b"|")
            channel = channel_bytes.decode()
            ready = self._ready.get(owner)
            if ready is None:
                ready = self._ready[owner] = OrderedDict()
            ready[channel] = None
        else:
            owner, channel, data = None, key[len(self.prefix) + 2 :], rest
        buffer = self._buffers.get(channel)
        if buffer is None:
            buffer = self._buffers[channel] = deque()
        buffer.append((expires_at, data))
        if owner is not None:
            # Buffered first, so a failure here costs a capacity slot, never the message.
            await self._call(self._redis.hincrby, f"{self.prefix}n:{owner}", channel, -1)

    # Groups -----------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add *channel* to *group*, or renew its membership."""
        check_group_name(group)
        check_channel_name(channel)
        self._check_open()
        ttl = int(self.group_expiry) + 1
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(f"{self.prefix}g:{group}", {channel: time.time() + self.group_expiry})
            pipe.hset(f"{self.prefix}gc:{group}", channel, self.capacity_for(channel))
            pipe.expire(f"{self.prefix}g:{group}", ttl)
            pipe.expire(f"{self.prefix}gc:{group}", ttl)
            await self._call(pipe.execute)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; nothing happens when it is not a member."""
        check_group_name(group)
        check_channel_name(channel)
        self._check_open()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(f"{self.prefix}g:{group}", channel)
            pipe.hdel(f"{self.prefix}gc:{group}", channel)
            await self._call(pipe.execute)

    async def group_send(self, group: str, message: dict) -> None:
        """Send *message* to every member of *group*; full members are skipped and counted."""
        check_group_name(group)
        data = pack(message, self.max_message_size)
        self._check_open()
        full = await self._call(self._group_send_script, args=[*self._push_args(data), group])
        if full:
            logger.debug("Group send to %r skipped %d full members.", group, full)

    async def group_members(self, group: str) -> list[str]:
        """The channels of *group* whose membership has not expired."""
        check_group_name(group)
        self._check_open()
        members = await self._call(
            self._redis.zrangebyscore, f"{self.prefix}g:{group}", time.time(), "+inf"
        )
        return [member.decode() for member in members]

    # Lifecycle and statistics -----------------------------------------------------------

    async def _keys(self) -> list[bytes]:
        return [key async for key in self._redis.scan_iter(match=f"{self.prefix}*", count=500)]

    async def flush(self) -> None:
        """Delete every key under this layer's prefix and every buffered message."""
        self._check_open()
        keys = await self._call(self._keys)
        if keys:
            await self._call(self._redis.delete, *keys)
        self._buffers.clear()
        self._ready.clear()

    async def close(self) -> None:
        """Close the connections; waiting receives raise LayerClosed, as do later calls."""
        if self._closed:
            return
        self._closed = True
        fetches = list(self._fetches.values())
        for fetch in fetches:
            fetch.cancel()
        await asyncio.gather(*fetches, return_exceptions=True)
        self._buffers.clear()
        self._ready.clear()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    @staticmethod
    def _closed_error() -> LayerClosed:
        return LayerClosed("The channel layer is closed: build a new layer to go on.")

    async def stats(self, channel: str | None = None) -> LayerStats:
        """Messages pending, the oldest one's age and refused sends, of *channel* or all."""
        self._check_open()
        if channel is not None:
            check_channel_name(channel)
        now = time.time()
        if channel is None:
            keys = [
                key.decode()
                for key in await self._call(self._keys)
                if key[len(self.prefix) :].startswith((b"c:", b"p:"))
            ]
            full_key = f"{self.prefix}full"
        elif "!" in channel:
            keys = [f"{self.prefix}p:{process_prefix(channel)}"]
            full_key = f"{self.prefix}full:{channel}"
        else:
            keys = [f"{self.prefix}c:{channel}"]
            full_key = f"{self.prefix}full:{channel}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(full_key)
            for key in keys:
                pipe.lrange(key, 0, -1)
            full, *lists = await self._call(pipe.execute)
        entries = [
            self._parse(key, entry)
            for key, items in zip(keys, lists, strict=True)
            for entry in items
        ]
        if channel is not None:
            entries = [entry for entry in entries if entry[0] == channel]
        for name, buffer in self._buffers.items():
            if channel is None or name == channel:
                entries.extend((name, expires_at) for expires_at, _ in buffer)
        live = [expires_at for _, expires_at in entries if expires_at > now]
        oldest_age = None
        if live:
            oldest_age = max(0.0, now - (min(live) - self.expiry))
        return LayerStats(pending=len(live), oldest_age=oldest_age, full_count=int(full or 0))

    def _parse(self, key: str, entry: bytes) -> tuple[str, float]:
        """The channel and expiry time of a stored *entry* of *key*."""
        expires_text, _, rest = entry.partition(b"|")
        if key.startswith(f"{self.prefix}p:"):
            channel = rest.partition(b"|")[0].decode()
        else:
            channel = key[len(self.prefix) + 2 :]
        return channel, float(expires_text)
