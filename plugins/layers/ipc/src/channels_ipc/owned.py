"""Receiving from this process's own channels (``prefix!…``) in the IPC layer.

Their messages are taken from the store in batches, one transaction for many messages and
channels, and each is handed to a receive waiting on its channel (or on its owner prefix,
for ``receive_prefix``) or kept in a local buffer, per channel, for the next receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Iterable

from channels_core.layers import hand_to_waiter

# How many deliveries (messages times the channels each is for) of this process's own channels
# one transaction takes, at most or a few more.
_OWNER_BATCH = 10_000

# A message of one of this process's channels: (channel, expires_at, packed message).
Entry = tuple[str, float, bytes]


class OwnedChannels:
    """The receives of this process's own channels, part of :class:`.IPCChannelLayer`.

    Uses the layer's state, set in its ``__init__``: the waiters per channel and per owner,
    the interest per owner, and the buffers.
    """

    async def _receive_owned(self, owner: str, channel: str | None) -> Entry:
        """The next message of *channel* (or of any channel under *owner* when None)."""
        loop = self._bind()
        while True:
            self._check_open()
            found = self._pop_buffered(owner, channel)
            if found is not None:
                return found
            # While this process is rung for *owner*, everything stored for it since the last
            # fetch has rung the doorbell, whose reader fetches it: there is nothing to take.
            if owner in self._registered or not self._fetch_owner(owner, register=True):
                break
        if channel is None:
            waiters, key = self._prefix_waiters, owner
        else:
            waiters, key = self._owned_waiters, channel
        waiter = loop.create_future()
        queue = waiters.get(key)
        if queue is None:
            queue = waiters[key] = deque()
        queue.append(waiter)
        interest = self._owner_interest
        interest[owner] = interest.get(owner, 0) + 1
        try:
            entry = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and not self._closed:
                # Handed its message, then cancelled before it could return it: put it back.
                channel, expires_at, data = waiter.result()
                self._deliver(owner, (channel,), expires_at, data, last=False)
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
                if not queue and waiters.get(key) is queue:
                    del waiters[key]
            raise
        finally:
            remaining = interest.get(owner, 0) - 1
            if remaining > 0:
                interest[owner] = remaining
            else:
                interest.pop(owner, None)
        return entry

    def _fetch_owner(self, owner: str, register: bool) -> bool:
        """Take *owner*'s stored messages: to its waiting receives, or into the buffers.

        False when there were none (and, with *register*, this process is now rung for them).
        """
        fetched = False
        while True:
            with self._lock:
                self._check_open()
                token = self._token_for(owner) if register else None
                taken = self._store.take_owner(owner, time.time(), _OWNER_BATCH, token)
            if not taken:
                if token is not None:
                    self._registered.add(owner)
                return fetched
            fetched = True
            deliveries = 0
            for channels, expires_at, data in taken:
                deliveries += len(channels)
                self._deliver(owner, channels, expires_at, data)
            if deliveries < _OWNER_BATCH:
                return True

    def _deliver(
        self,
        owner: str,
        channels: Iterable[str],
        expires_at: float,
        data: bytes,
        last: bool = True,
    ) -> None:
        """Hand a message for *channels* of *owner* to a receive waiting on each, or buffer it.

        Buffered behind the channel's other messages, or before them when *last* is false (a
        message given back by a cancelled receive).
        """
        buffers, owned_waiters, prefix_waiters = (
            self._buffers,
            self._owned_waiters,
            self._prefix_waiters,
        )
        for channel in channels:
            entry = (channel, expires_at, data)
            if channel not in buffers and (
                (channel in owned_waiters and hand_to_waiter(owned_waiters, channel, entry))
                or (owner in prefix_waiters and hand_to_waiter(prefix_waiters, owner, entry))
            ):
                continue
            self._buffer(owner, entry, last)

    def _buffer(self, owner: str, entry: Entry, last: bool) -> None:
        """Keep *entry* for a later receive: after its channel's others, or first if not *last*."""
        channel = entry[0]
        ready = self._ready.get(owner)
        if ready is None:
            ready = self._ready[owner] = OrderedDict()
        buffer = self._buffers.get(channel)
        if buffer is None:
            buffer = self._buffers[channel] = deque()
        ready[channel] = None
        if last:
            buffer.append(entry)
        else:
            buffer.appendleft(entry)
            ready.move_to_end(channel, last=False)

    def _pop_buffered(self, owner: str, channel: str | None) -> Entry | None:
        """The next unexpired buffered message of *channel* (or of any under *owner*)."""
        ready = self._ready.get(owner)
        if not ready:
            return None
        if channel is not None:
            return self._pop_buffer(channel, ready)
        while ready:
            channel = next(iter(ready))
            entry = self._pop_buffer(channel, ready)
            if entry is not None:
                # Round robin: a channel that still holds messages goes to the back, so one
                # busy connection cannot starve the others.
                if channel in ready:
                    ready.move_to_end(channel)
                return entry
        return None

    def _pop_buffer(self, channel: str, ready: OrderedDict[str, None]) -> Entry | None:
        buffer = self._buffers.get(channel)
        now = time.time()
        while buffer:
            entry = buffer.popleft()
            if not buffer:
                del self._buffers[channel]
                del ready[channel]
            if entry[1] > now:
                return entry
        return None
