"""Receives waiting on channels, and the messages popped for none of them yet.

A popping task (:mod:`channels_redis.popping`) hands each message it pops to a receive waiting
on its channel, or on its channel's process prefix (``receive_prefix``); when none waits, the
message is buffered here, decrypted, for the next receive.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from channels_core.layers import hand_to_waiter
from channels_core.names import process_prefix

if TYPE_CHECKING:
    from .popping import PoppedList


class Waiters:
    """The waiting receives of a layer, per channel and per process prefix, and its buffers."""

    def __init__(self) -> None:
        # Popped but not yet received messages, per channel: (expires_at, packed message),
        # decrypted.
        self.buffers: dict[str, deque[tuple[float, bytes]]] = {}
        # Per process prefix: the channels with buffered messages, in arrival order.
        self.ready: dict[str, OrderedDict[str, None]] = {}
        # Futures of waiting receives, per channel and (receive_prefix) per process prefix.
        self.by_channel: dict[str, deque[asyncio.Future]] = {}
        self.by_prefix: dict[str, deque[asyncio.Future]] = {}

    def take(self, channel: str) -> bytes | None:
        """The next unexpired buffered message of *channel*, or None."""
        buffer = self.buffers.get(channel)
        if buffer is None:
            return None
        now = time.time()
        while buffer:
            expires_at, data = buffer.popleft()
            if not buffer:
                del self.buffers[channel]
                if "!" in channel:
                    owner = process_prefix(channel)
                    ready = self.ready[owner]
                    del ready[channel]
                    if not ready:
                        del self.ready[owner]
            if expires_at > now:
                return data
        return None

    def take_ready(self, owner: str) -> tuple[str, bytes | None]:
        """A buffered message of any channel of *owner*: ``(channel, data)``, data None if none."""
        ready = self.ready.get(owner)
        while ready:
            channel = next(iter(ready))
            data = self.take(channel)
            if data is not None:
                return channel, data
        return "", None

    def deliver(
        self,
        popped: PoppedList,
        channel: str,
        expires_at: float,
        data: bytes,
        front: bool = False,
    ) -> None:
        """Hand a popped message to a waiting receive of *popped*, or buffer it."""
        owner = popped.owner
        handed = (channel, expires_at, data)
        if hand_to_waiter(self.by_channel, channel, handed) or (
            owner is not None and hand_to_waiter(self.by_prefix, owner, handed)
        ):
            popped.waiting -= 1
            return
        buffer = self.buffers.get(channel)
        if buffer is None:
            buffer = self.buffers[channel] = deque()
        if front:
            buffer.appendleft((expires_at, data))
        else:
            buffer.append((expires_at, data))
        if owner is not None:
            ready = self.ready.get(owner)
            if ready is None:
                ready = self.ready[owner] = OrderedDict()
            ready[channel] = None

    def fail(self, popped: PoppedList, error: Exception) -> None:
        """Raise *error* in the receives waiting on *popped*'s list."""
        if popped.owner is None:
            queues = [self.by_channel.pop(popped.channel, ())]
        else:
            queues = [self.by_prefix.pop(popped.owner, ())]
            queues += [
                self.by_channel.pop(channel)
                for channel in list(self.by_channel)
                if channel.startswith(popped.owner)
            ]
        for queue in queues:
            for future in queue:
                if not future.done():
                    future.set_exception(error)

    def fail_all(self, make_error: Callable[[], Exception]) -> None:
        """Raise an error made by *make_error* in every waiting receive."""
        for waiters in (self.by_channel, self.by_prefix):
            for queue in waiters.values():
                for future in queue:
                    if not future.done():
                        future.set_exception(make_error())
            waiters.clear()

    def clear_buffers(self) -> None:
        """Forget every buffered message."""
        self.buffers.clear()
        self.ready.clear()
