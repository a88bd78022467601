"""Capacity: the message counts (database ``n``) that decide when a channel is full.

A normal channel is counted one by one. An owner's queue is counted as a whole, and its
channels one by one only once one of them could be full (see :mod:`.layout`). A send
refused at capacity is counted in the full counts (database ``f``).
"""

from __future__ import annotations

import itertools
import operator
import struct
from collections import Counter

import lmdb

from . import layout
from .environment import Environment
from .layout import OWNER_KEY, TOTAL, ZERO, increment, names_of, queue_key

# Assigned, not imported by name, to keep their calls method calls: see layout.py.
COUNT, EXPIRES, OWNED = layout.COUNT, layout.EXPIRES, layout.OWNED


class Capacity(Environment):
    """Counting messages in and out of the queues, for capacity."""

    def _reserve_owned(
        self,
        txn: lmdb.Transaction,
        owner: bytes,
        names: list[bytes],
        capacities: list[int],
        now: float,
    ) -> list[bytes]:
        """Count one more message for *owner*'s queue, for its channels *names* (in name
        order, with their *capacities*); the names that had room, the others counted as full.

        While the owner's channels are not counted one by one, that is one count for all of
        them; else a few calls for all of them, with no Python step per channel, while none is
        full.
        """
        queued, counted = self._owner(txn, owner)
        if not counted and queued >= min(capacities):
            self._count_channels(txn, owner)
            counted = True
        if counted:
            names = self._reserve_each(txn, names, capacities, now)
            # Dropping expired messages to make room may have changed the queue.
            queued = self._owner(txn, owner)[0]
        # Written even when all were full: the channels may have just started being counted.
        txn.put(OWNER_KEY + owner, OWNED.pack(queued + bool(names), counted), db=self.counts)
        return names

    def _owner(self, txn: lmdb.Transaction, owner: bytes) -> tuple[int, bool]:
        """The messages in *owner*'s queue, and whether its channels are counted one by one."""
        stored = txn.get(OWNER_KEY + owner, db=self.counts)
        return OWNED.unpack(stored) if stored else (0, False)

    def _count_channels(self, txn: lmdb.Transaction, owner: bytes) -> None:
        """Start counting the messages of *owner*'s channels one by one."""
        queue = b"o" + owner + b"\0"
        counted: Counter[bytes] = Counter()
        cursor = txn.cursor(self.messages)
        if cursor.set_range(queue):
            for key, value in cursor:
                if not key.startswith(queue):
                    break
                counted.update(names_of(queue, value)[0])
        names = sorted(counted)
        cursor = txn.cursor(self.counts)
        counts = map(COUNT.pack, map(counted.__getitem__, names))
        cursor.putmulti(zip(names, counts, strict=True))

    def _reserve_each(
        self, txn: lmdb.Transaction, names: list[bytes], capacities: list[int], now: float
    ) -> list[bytes]:
        """Count one more message for each of the counted channels *names*; those that had
        room."""
        cursor = txn.cursor(self.counts)
        counted = dict(cursor.getmulti(names))
        stored = b"".join(map(counted.get, names, itertools.repeat(ZERO)))
        counts = struct.unpack(f"<{len(names)}Q", stored)
        if all(map(operator.lt, counts, capacities)):
            cursor.putmulti(zip(names, map(COUNT.pack, map((1).__add__, counts)), strict=True))
            return names
        # One is full: channel by channel, dropping expired messages to make room.
        return [
            name
            for name, capacity in zip(names, capacities, strict=True)
            if self._reserve(txn, name, capacity, now)
        ]

    def _reserve(self, txn: lmdb.Transaction, name: bytes, capacity: int, now: float) -> bool:
        """Count one more message for channel *name* (normal, or of an owner counted one by
        one); False (counted as full) at capacity."""
        counted = txn.get(name, db=self.counts)
        count = COUNT.unpack(counted)[0] if counted else 0
        if count >= capacity:
            # Expired messages at the head of the queue do not hold capacity.
            self._drop_expired(txn, queue_key(name), now)
            counted = txn.get(name, db=self.counts)
            count = COUNT.unpack(counted)[0] if counted else 0
            if count >= capacity:
                increment(txn, self.full, name)
                increment(txn, self.full, TOTAL)
                return False
        txn.put(name, COUNT.pack(count + 1), db=self.counts)
        return True

    def _drop_expired(self, txn: lmdb.Transaction, queue: bytes, now: float) -> None:
        """Delete the expired messages at the head of *queue*: a normal channel's, or the
        queue of an owner whose channels are counted one by one."""
        dropped = 0
        cursor = txn.cursor(self.messages)
        found = cursor.set_range(queue)
        while found and cursor.key().startswith(queue):
            value = cursor.value()
            if EXPIRES.unpack_from(value)[0] > now:
                break
            for name in names_of(queue, value)[0]:
                self._uncount(txn, name)
            dropped += 1
            found = cursor.delete()
        if dropped and queue[:1] == b"o":
            owner = queue[1:-1]
            # Counted one by one still: the caller goes on counting a channel of it.
            queued = self._owner(txn, owner)[0] - dropped
            txn.put(OWNER_KEY + owner, OWNED.pack(queued, True), db=self.counts)

    def _set_owner(self, txn: lmdb.Transaction, owner: bytes, queued: int, counted: bool) -> None:
        """Record the messages left in *owner*'s queue; with none, its channels hold none."""
        if queued:
            txn.put(OWNER_KEY + owner, OWNED.pack(queued, counted), db=self.counts)
            return
        if counted:
            self._clear_counts(txn, owner)
        txn.delete(OWNER_KEY + owner, db=self.counts)

    def _uncount(self, txn: lmdb.Transaction, channel: bytes, removed: int = 1) -> None:
        counted = txn.get(channel, db=self.counts)
        count = COUNT.unpack(counted)[0] - removed if counted else 0
        if count > 0:
            txn.put(channel, COUNT.pack(count), db=self.counts)
        else:
            txn.delete(channel, db=self.counts)

    def _clear_counts(self, txn: lmdb.Transaction, owner: bytes) -> None:
        """Delete the counts of every channel of *owner*."""
        cursor = txn.cursor(self.counts)
        if not cursor.set_range(owner):
            return
        # A delete moves to the next record; past the last one, the key is empty.
        while cursor.key().startswith(owner):
            cursor.delete()
