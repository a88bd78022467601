"""Waiting receives of the IPC layer, and the doorbell that wakes them.

A layer reads its doorbell (:mod:`.wake`) on the event loop it receives on; each line rung
names a key: a normal channel, whose waiting receives are woken to take a message
themselves, or an owner prefix, whose messages are fetched (:mod:`.owned`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque

from .wake import Doorbell


class Waiters:
    """The event-loop side of receiving, part of :class:`.IPCChannelLayer`.

    Uses the layer's state, set in its ``__init__``: its doorbell and loop, the keys this
    process is registered for, and the waiting receives.
    """

    def _token_for(self, key: str) -> bytes | None:
        """This process's token when *key* is not yet registered to ring it, else None."""
        if key in self._registered:
            return None
        assert self._doorbell is not None
        return self._doorbell.token

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop, which reads this layer's doorbell (set up on first use)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return loop
        self._check_open()
        if self._loop is not None and not self._loop.is_closed():
            if self._loop.is_running():
                raise RuntimeError(
                    "This IPC layer already receives on another running event loop; a layer "
                    "receives on one loop at a time: build one layer per event loop."
                )
            self._loop.remove_reader(self._doorbell.fd)
        # Receives left waiting on a loop that stopped will never run again.
        for waiters in (self._waiters, self._owned_waiters, self._prefix_waiters):
            waiters.clear()
        self._owner_interest.clear()
        if self._doorbell is None:
            self._doorbell = Doorbell(self._wake_directory)
        loop.add_reader(self._doorbell.fd, self._on_doorbell)
        self._loop = loop
        return loop

    async def _wait(self, channel: str, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until normal *channel* may have a message (or the layer closes)."""
        waiter = loop.create_future()
        queue = self._waiters.get(channel)
        if queue is None:
            queue = self._waiters[channel] = deque()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Woken, then cancelled before it could look: pass the wake-up on.
                self._wake(channel, 1)
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise
        finally:
            if not queue and self._waiters.get(channel) is queue:
                del self._waiters[channel]

    def _wake(self, channel: str, count: int) -> None:
        """Wake up to *count* receives waiting on normal *channel*."""
        queue = self._waiters.get(channel)
        while queue and count:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def _on_doorbell(self) -> None:
        """Wake the receives whose keys were rung; forget keys nobody waits on any more."""
        if self._closed:
            return
        rung = self._doorbell.read()
        if rung is None:
            # The FIFO overflowed and lines may be lost: every waiting key gets looked at.
            rung = Counter({*self._registered, *self._waiters, *self._owner_interest})
        stale = []
        for key, count in rung.items():
            if key.endswith("!"):
                if key in self._owner_interest:
                    self._fetch_owner(key, register=False)
                else:
                    stale.append(key)
            elif key in self._waiters:
                self._wake(key, count)
            else:
                stale.append(key)
        stale = [key for key in stale if key in self._registered]
        if stale:
            self._registered.difference_update(stale)
            token = self._doorbell.token
            with self._lock:
                self._check_open()
                self._store.unregister((key, token) for key in stale)

    def _detach(self, doorbell: Doorbell | None) -> None:
        """On the receiving loop: stop reading the doorbell and fail the waiting receives."""
        if doorbell is not None:
            self._loop.remove_reader(doorbell.fd)
            doorbell.close()
        for waiters in (self._waiters, self._owned_waiters, self._prefix_waiters):
            for queue in waiters.values():
                for waiter in queue:
                    if not waiter.done():
                        waiter.set_exception(self._closed_error())
            waiters.clear()
