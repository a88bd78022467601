"""Channel queues: storing a message for one channel, and taking messages out.

A normal channel's receive takes one message at a time; a process takes the messages of
all its own channels (its owner queue) in one ordered scan.
"""

from __future__ import annotations

from collections import Counter

import lmdb

from . import layout
from .capacity import Capacity
from .layout import next_seq, queue_key, wake_key
from .registrations import WakeRegistrations

# Assigned, not imported by name, to keep their calls method calls: see layout.py.
EXPIRES, NAMES, SEQ = layout.EXPIRES, layout.NAMES, layout.SEQ

# A message taken from an owner's queue: (its channels, expires_at, packed message).
Taken = tuple[list[str], float, bytes]


class ChannelQueues(Capacity, WakeRegistrations):
    """The store's transactions that send to one channel and take messages."""

    def send(
        self, channel: str, data: bytes, capacity: int, expires_at: float, now: float
    ) -> list[bytes] | None:
        """Store a message; the tokens to ring, or None when *channel* is full."""
        with self._write() as txn:
            return self._put_message(txn, channel.encode(), data, capacity, expires_at, now)

    def _put_message(
        self,
        txn: lmdb.Transaction,
        name: bytes,
        data: bytes,
        capacity: int,
        expires_at: float,
        now: float,
    ) -> list[bytes] | None:
        """Store a message for the channel *name* in *txn*; the tokens to ring, or None when
        the channel is full."""
        bang = name.find(b"!")
        if bang < 0:
            if not self._reserve(txn, name, capacity, now):
                return None
        elif not self._reserve_owned(txn, name[: bang + 1], [name], [capacity], now):
            return None
        stamp = EXPIRES.pack(expires_at)
        key = queue_key(name) + SEQ.pack(next_seq(txn, 1))
        if bang < 0:
            txn.put(key, stamp + data, db=self.messages)
        else:
            value = stamp + NAMES.pack(len(name)) + name + data
            txn.put(key, value, db=self.messages)
        return self._tokens(txn, wake_key(name))

    def take(self, channel: str, now: float, register: bytes | None) -> tuple[bytes | None, bool]:
        """The next unexpired message of a normal *channel*, and whether more are waiting.

        With nothing to take and *register* set (this process's token), registers it to be
        rung by the next send, in the same transaction, so no send falls between the two.
        """
        name = channel.encode()
        queue = b"c" + name + b"\0"
        with self._write() as txn:
            cursor = txn.cursor(self.messages)
            found = cursor.set_range(queue)
            while found and cursor.key().startswith(queue):
                value = cursor.value()
                found = cursor.delete()
                self._uncount(txn, name)
                if EXPIRES.unpack_from(value)[0] > now:
                    more = found and cursor.key().startswith(queue)
                    return value[EXPIRES.size :], more
            if register is not None:
                txn.put(name + b"\0" + register, b"", db=self.wakes)
            return None, False

    def take_owner(self, owner: str, now: float, limit: int, register: bytes | None) -> list[Taken]:
        """The unexpired messages of *owner*'s channels, in send order: for *limit*
        deliveries, or a few more.

        Registers *register* like :meth:`take` when there is nothing to take.
        """
        owner_name = owner.encode()
        queue = b"o" + owner_name + b"\0"
        taken: list[Taken] = []
        removed = []
        deliveries = 0
        with self._write() as txn:
            cursor = txn.cursor(self.messages)
            found = cursor.set_range(queue)
            while found and deliveries < limit and cursor.key().startswith(queue):
                value = cursor.value()
                found = cursor.delete()
                end = EXPIRES.size + NAMES.size + NAMES.unpack_from(value, EXPIRES.size)[0]
                # Decoded and split once per message, however many channels it is for.
                names = value[EXPIRES.size + NAMES.size : end].decode().split("\n")
                removed.append(names)
                expires_at = EXPIRES.unpack_from(value)[0]
                if expires_at > now:
                    taken.append((names, expires_at, value[end:]))
                    deliveries += len(names)
            if removed:
                queued, counted = self._owner(txn, owner_name)
                if counted and found and cursor.key().startswith(queue):
                    # Messages remain: count down once per channel, not once per message.
                    removed_per_channel = Counter(name for names in removed for name in names)
                    for name, count in removed_per_channel.items():
                        self._uncount(txn, name.encode(), count)
                self._set_owner(txn, owner_name, queued - len(removed), counted)
            if not taken and register is not None:
                txn.put(owner_name + b"\0" + register, b"", db=self.wakes)
        return taken
