"""Group history (database ``h``): the last messages of the groups that keep history.

A group send to such a group keeps its message in the same transaction that stores it for
the members, under the group's next offset, and trims the group to its retention there;
reading the history trims nothing, it leaves out what the retention no longer keeps. The
store's epoch (main database) names this store: it is made with the store and again by a
flush, so positions from a deleted or flushed store are never compared by offset.
"""

from __future__ import annotations

import lmdb

from channels_core.history import Retention

from . import layout
from .environment import Environment
from .layout import EPOCH_KEY

# Assigned, not imported by name, to keep their calls method calls: see layout.py.
HISTORY, KEPT_AT, SEQ = layout.HISTORY, layout.KEPT_AT, layout.SEQ

# The kept messages of a group from the history read: (offset, packed message).
Kept = list[tuple[int, bytes]]


class GroupHistory(Environment):
    """The store's transactions on group history."""

    def _keep(
        self, txn: lmdb.Transaction, prefix: bytes, data: bytes, retention: Retention, now: float
    ) -> tuple[str, int]:
        """Keep *data* as the next message of the group of *prefix*, trimmed to *retention*;
        the store's epoch and the message's offset."""
        stored = txn.get(prefix, db=self.history)
        last, dropped = HISTORY.unpack(stored) if stored else (0, 0)
        last += 1
        txn.put(prefix + SEQ.pack(last), KEPT_AT.pack(now) + data, db=self.history)
        trimmed = self._trimmed(txn, prefix, last, dropped, retention, now)
        if trimmed > dropped:
            cursor = txn.cursor(self.history)
            cursor.set_range(prefix + SEQ.pack(dropped + 1))
            end = prefix + SEQ.pack(trimmed)
            # A delete moves to the next record; past the last one, the key is empty.
            while cursor.key() and cursor.key() <= end:
                cursor.delete()
        txn.put(prefix, HISTORY.pack(last, trimmed), db=self.history)
        return self._epoch(txn), last

    def _trimmed(
        self,
        txn: lmdb.Transaction,
        prefix: bytes,
        last: int,
        dropped: int,
        retention: Retention,
        now: float,
    ) -> int:
        """The highest offset *retention* drops from the group of *prefix*, whose last offset
        is *last* and highest dropped offset *dropped* so far."""
        if retention.size is not None:
            dropped = max(dropped, last - retention.size)
        if retention.ttl is not None:
            oldest = now - retention.ttl
            cursor = txn.cursor(self.history)
            found = cursor.set_range(prefix + SEQ.pack(dropped + 1))
            # The oldest first: a message kept later than one still kept is kept too.
            while found and dropped < last and KEPT_AT.unpack_from(cursor.value())[0] < oldest:
                dropped += 1
                found = cursor.next()
        return dropped

    @staticmethod
    def _epoch(txn: lmdb.Transaction) -> str:
        return txn.get(EPOCH_KEY).decode()

    def group_history(
        self, group: str, retention: Retention, since: tuple[str, int] | None, now: float
    ) -> tuple[str, int, int, Kept]:
        """What *group* keeps after *since* (an ``(epoch, offset)`` position; everything kept
        when None or of another epoch): ``(epoch, last offset, highest offset dropped,
        kept messages)``."""
        prefix = group.encode() + b"\0"
        kept: Kept = []
        with self.env.begin() as txn:
            epoch = self._epoch(txn)
            stored = txn.get(prefix, db=self.history)
            last, dropped = HISTORY.unpack(stored) if stored else (0, 0)
            dropped = self._trimmed(txn, prefix, last, dropped, retention, now)
            after = dropped
            if since is not None and since[0] == epoch:
                after = max(after, since[1])
            if after < last:
                cursor = txn.cursor(self.history)
                cursor.set_range(prefix + SEQ.pack(after + 1))
                for key, value in cursor:
                    if not key.startswith(prefix) or len(key) != len(prefix) + SEQ.size:
                        break
                    kept.append((SEQ.unpack_from(key, len(prefix))[0], value[KEPT_AT.size :]))
        return epoch, last, dropped, kept
