"""Delayed messages of the IPC layer: kept in the store's database ``d`` until due.

A kept message's key is its due time and a sequence number (``DUE``, big-endian, so the
database is in due order); its value is the time it first fell due, its channel's capacity
(fixed when it was added, as a group member's is), its channel's name and the packed message
(``DELAYED``, see :mod:`.layout`).

Delivering a due message deletes it from ``d`` and stores it on its channel in one write
transaction, so it reaches its channel exactly once: two delay servers take turns at the
store's one writer lock, and a process killed mid-transaction leaves the last committed state,
where the message is either still kept or already on its channel. A due message whose channel
is full is kept under a later due time and tried again, until ``expiry`` seconds past the time
it first fell due.
"""

from __future__ import annotations

import time

import lmdb

from channels_core.layers import DELAY_RETRY_INTERVAL, DelayDelivery
from channels_core.names import check_channel_name, process_prefix
from channels_core.serialization import pack

from . import layout
from .layout import next_seq
from .queues import ChannelQueues

# Assigned, not imported by name, to keep their calls method calls: see layout.py.
DUE, DELAYED = layout.DUE, layout.DELAYED

# What a delivery transaction returns: the tokens to ring with their keys, how many messages
# it delivered, the channels of those it dropped, and when the next kept one is due.
Delivered = tuple[dict[bytes, list[str]], int, list[str], float | None]


class DelayedMessages(ChannelQueues):
    """The store's transactions on delayed messages."""

    def delay_add(self, name: bytes, data: bytes, capacity: int, due: float) -> None:
        """Keep the packed message *data* for the channel *name* until *due*."""
        with self._write() as txn:
            self._keep_delayed(txn, due, due, capacity, name, data)

    def _keep_delayed(
        self,
        txn: lmdb.Transaction,
        due: float,
        first_due: float,
        capacity: int,
        name: bytes,
        data: bytes,
    ) -> None:
        key = DUE.pack(due, next_seq(txn, 1))
        txn.put(key, DELAYED.pack(first_due, capacity, len(name)) + name + data, db=self.delays)

    def delay_deliver(self, now: float, expiry: float, limit: int) -> Delivered:
        """Move up to *limit* messages due at *now* to their channels (see the module)."""
        rings: dict[bytes, list[str]] = {}
        delivered, dropped, retried = 0, [], []
        with self._write() as txn:
            cursor = txn.cursor(self.delays)
            cursor.first()
            # A delete moves to the next record; past the last one, the key is empty.
            while len(retried) + delivered + len(dropped) < limit:
                key = cursor.key()
                if not key or DUE.unpack(key)[0] > now:
                    break
                value = cursor.value()
                cursor.delete()
                first_due, capacity, length = DELAYED.unpack_from(value)
                start = DELAYED.size
                name = value[start : start + length]
                data = value[start + length :]
                tokens = self._put_message(txn, name, data, capacity, now + expiry, now)
                channel = name.decode()
                if tokens is not None:
                    delivered += 1
                    key = process_prefix(channel) if "!" in channel else channel
                    for token in tokens:
                        rings.setdefault(token, []).append(key)
                elif now - first_due >= expiry:
                    dropped.append(channel)
                else:
                    retried.append((first_due, capacity, name, data))
            for first_due, capacity, name, data in retried:
                self._keep_delayed(txn, now + DELAY_RETRY_INTERVAL, first_due, capacity, name, data)
            cursor = txn.cursor(self.delays)
            next_due = DUE.unpack(cursor.key())[0] if cursor.first() else None
        return rings, delivered, dropped, next_due


class IPCDelays:
    """``delay_add`` and ``delay_deliver`` of :class:`~channels_ipc.layer.IPCChannelLayer`.

    A mixin, as the layer's own methods: it uses the layer's ``_store``, ``_lock``,
    ``_check_open``, ``_ring``, ``capacity_for``, ``expiry`` and ``max_message_size``.
    """

    async def delay_add(self, channel: str, message: dict, delay: float) -> None:
        """Keep *message* for *channel* until *delay* seconds from now, in the store; see
        :meth:`~channels_core.layers.BaseChannelLayer.delay_add`."""
        check_channel_name(channel)
        delay = self.check_delay(delay)
        data = pack(message, self.max_message_size)
        capacity = self.capacity_for(channel)
        with self._lock:
            self._check_open()
            self._store.delay_add(channel.encode(), data, capacity, time.time() + delay)

    async def delay_deliver(self, limit: int = 100) -> DelayDelivery:
        """Move the due messages to their channels, each in the transaction that deletes it
        from the store; see :meth:`~channels_core.layers.BaseChannelLayer.delay_deliver`."""
        with self._lock:
            self._check_open()
            now = time.time()
            rings, delivered, dropped, next_due = self._store.delay_deliver(now, self.expiry, limit)
            if rings:
                self._ring(rings)
        waiting = None if next_due is None else max(0.0, next_due - now)
        return DelayDelivery(delivered, tuple(dropped), waiting)
