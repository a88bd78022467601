"""Delayed messages (``asgi.delay``): kept in Redis, in one sorted set scored by due time.

The set lives under the layer's prefix (``dl:{delayed}``, :mod:`channels_redis.keys`), on the
server the hash ring gives it, with no expiry: a delayed message survives every process, and
a Redis restart when Redis persists. Each member carries the time it first fell due, its
channel's capacity (fixed when it was added, as a group member's is), its channel, a random id
and the packed message, encrypted like every message when the layer has
``symmetric_encryption_keys``.

How a due message reaches its channel, and what a crash can do:

- On a one-server layer (one host, not a Redis Cluster), one Lua script moves it: the script
  that pushes it onto its channel removes it from the set, atomically. However many delay
  servers call it, and whenever one is killed, it reaches its channel exactly once.
- On several servers, its channel may be on another server than the set, and no script spans
  two servers: one script takes the due messages out of the set, then each is pushed to its
  channel's server. It never reaches its channel twice, but a delay server killed between
  the two calls loses the messages it took (at most once).

A due message whose channel is full (or, on several servers, whose channel's server cannot be
reached) stays in the set, due again :data:`~channels_core.layers.DELAY_RETRY_INTERVAL` later,
until ``expiry`` seconds past the time it first fell due; then it is dropped.
"""

from __future__ import annotations

import logging
import time

from channels_core.exceptions import LayerUnavailable
from channels_core.layers import DELAY_RETRY_INTERVAL, DelayDelivery
from channels_core.names import check_channel_name, random_suffix

from . import scripts
from .hosts import Script

logger = logging.getLogger(__name__)

_SEND = Script(scripts.SEND)
_DELAY_ADD = Script(scripts.DELAY_ADD)
_DELAY_DELIVER_LOCAL = Script(scripts.DELAY_DELIVER_LOCAL)
_DELAY_TAKE = Script(scripts.DELAY_TAKE)


class RedisDelays:
    """``delay_add`` and ``delay_deliver`` of :class:`~channels_redis.layer.RedisChannelLayer`.

    A mixin, as the layer's own methods: it uses the layer's ``prefix``, ``expiry``,
    ``capacity_for``, ``_router``, ``_route``, ``_one_server``, ``_encode``, ``_push_args``,
    ``_script`` and ``_check_open``.
    """

    async def delay_add(self, channel: str, message: dict, delay: float) -> None:
        """Keep *message* for *channel* until *delay* seconds from now, in Redis; see
        :meth:`~channels_core.layers.BaseChannelLayer.delay_add`."""
        check_channel_name(channel)
        delay = self.check_delay(delay)
        data = self._encode(message)
        self._check_open()
        due = repr(time.time() + delay)
        head = f"{due}|{self.capacity_for(channel)}|{channel}|{random_suffix()}|"
        shard, key = self._router.delay_route()
        await self._script(shard, _DELAY_ADD, [key], [due, head.encode() + data])

    async def delay_deliver(self, limit: int = 100) -> DelayDelivery:
        """Move the due messages to their channels (see the module for how); see
        :meth:`~channels_core.layers.BaseChannelLayer.delay_deliver`."""
        self._check_open()
        shard, key = self._router.delay_route()
        push_args = self._push_args(b"")
        now = float(push_args[0])
        if self._one_server:
            args = [*push_args, self.prefix, limit, repr(self.expiry), repr(DELAY_RETRY_INTERVAL)]
            reply = await self._script(shard, _DELAY_DELIVER_LOCAL, [key], args)
            delivered, next_due = reply[0], reply[1]
            dropped = [channel.decode() for channel in reply[2:]]
        else:
            reply = await self._script(shard, _DELAY_TAKE, [key], [push_args[0], limit])
            next_due, taken = reply[0], reply[1:]
            delivered, dropped, retried = await self._push_taken(taken, push_args, now)
            if retried:
                due = repr(now + DELAY_RETRY_INTERVAL)
                await self._script(
                    shard, _DELAY_ADD, [key], [item for member in retried for item in (due, member)]
                )
                next_due = min(float(next_due or "inf"), now + DELAY_RETRY_INTERVAL)
        waiting = None if next_due in (b"", "") else max(0.0, float(next_due) - now)
        return DelayDelivery(delivered, tuple(dropped), waiting)

    async def _push_taken(
        self, taken: list[bytes], push_args: list, now: float
    ) -> tuple[int, list[str], list[bytes]]:
        """Push each member taken out of the set to its channel; (how many were delivered,
        the channels of those dropped, the members to keep for another try)."""
        delivered, dropped, retried = 0, [], []
        for member in taken:
            first_due, capacity, name, _, data = member.split(b"|", 4)
            channel = name.decode()
            shard, keys = self._route(channel)
            args = [*push_args[:3], data, channel, int(capacity)]
            try:
                full = await self._script(shard, _SEND, keys[:3], args)
            except LayerUnavailable as error:
                logger.warning(
                    "A due delayed message for %r could not be put on its channel (%s); it is "
                    "kept and tried again.",
                    channel,
                    error,
                )
                full = 1
            if not full:
                delivered += 1
            elif now - float(first_due) >= self.expiry:
                dropped.append(channel)
            else:
                retried.append(member)
        return delivered, dropped, retried
