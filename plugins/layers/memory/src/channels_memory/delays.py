"""Delayed messages of the memory layer: kept in this process, in a heap by due time.

They live as long as the layer, like its messages: a delay server running in this process
(:class:`channels_core.delay.DelayServer` on the same layer) delivers them; no other process
can see them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from channels_core.layers import DELAY_RETRY_INTERVAL, DelayDelivery
from channels_core.names import check_channel_name
from channels_core.serialization import pack

# A kept message: (due, sequence, first due, channel, packed message). The sequence keeps
# messages due at the same time in the order they were added.
Delayed = tuple[float, int, float, str, bytes]


class MemoryDelays:
    """``delay_add`` and ``delay_deliver`` of
    :class:`~channels_memory.layer.InMemoryChannelLayer`.

    A mixin, as the layer's own methods: it uses the layer's ``_lock``, ``_closed``,
    ``_closed_error``, ``_put``, ``expiry`` and ``max_message_size``, and keeps its heap in
    ``_delayed``.
    """

    _delay_sequence = itertools.count()

    async def delay_add(self, channel: str, message: dict, delay: float) -> None:
        """Keep *message* for *channel* until *delay* seconds from now; see
        :meth:`~channels_core.layers.BaseChannelLayer.delay_add`."""
        check_channel_name(channel)
        delay = self.check_delay(delay)
        data = pack(message, self.max_message_size)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            due = time.monotonic() + delay
            heapq.heappush(self._delayed, (due, next(self._delay_sequence), due, channel, data))

    async def delay_deliver(self, limit: int = 100) -> DelayDelivery:
        """Put the due messages on their channels; see
        :meth:`~channels_core.layers.BaseChannelLayer.delay_deliver`."""
        loop = asyncio.get_running_loop()
        delivered, dropped, retried = 0, [], []
        with self._lock:
            if self._closed:
                raise self._closed_error()
            delayed = self._delayed
            now = time.monotonic()
            taken = 0
            while delayed and delayed[0][0] <= now and taken < limit:
                taken += 1
                _, sequence, first_due, channel, data = heapq.heappop(delayed)
                if self._put(channel, (channel, now + self.expiry, data), loop):
                    delivered += 1
                elif now - first_due >= self.expiry:
                    dropped.append(channel)
                else:
                    retried.append((now + DELAY_RETRY_INTERVAL, sequence, first_due, channel, data))
            for entry in retried:
                heapq.heappush(delayed, entry)
            next_due = max(0.0, delayed[0][0] - now) if delayed else None
        return DelayDelivery(delivered, tuple(dropped), next_due)
