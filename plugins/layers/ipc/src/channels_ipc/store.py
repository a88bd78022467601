"""The shared state of the IPC layer: one LMDB environment in the layer's directory.

LMDB gives what a store shared by processes that may be killed at any moment needs: every
change is a transaction, written copy-on-write and made visible by one meta page update, so a
process killed mid-transaction leaves the last committed state; and its one writer lock is a
robust process-shared mutex, which the next process to take it recovers from a dead owner.

Named databases:

``m`` (messages)
    a normal channel's message under ``b"c" + channel + b"\\0" + seq``, its value
    ``expires_at + packed message``. Messages for process-specific channels go to their
    owner's queue (``owner`` is the name up to ``!``), under ``b"o" + owner + b"\\0" + seq``,
    with the value ``expires_at + length + names + packed message``, *names* being the
    channels' names joined by newlines (which no name holds) and *length* its size: one entry
    carries a message to all the owner's channels a group send reaches, and the owner takes the
    messages of all its channels in one ordered scan. ``seq`` is a big-endian
    counter shared by every queue: key order is send order.
``n`` (counts)
    the number of stored messages of each normal channel, for capacity (none for a channel
    with no message); and per owner, under ``b"!" + owner`` (no channel name starts with
    ``!``), the number of messages in its queue and whether its channels are counted one by
    one. They are not while that number is below the capacity of every channel sent to: a
    channel holds at most one message per message in its owner's queue, so none can be full,
    and a group send to a thousand of its channels updates one count, not a thousand. Once
    one of them could be full, the owner's queue is counted per channel, and stays so until
    it is emptied. An owner's channels sort together, so their counts go in one range.
``g`` (groups)
    ``group + b"\\0" + channel`` to the membership's expiry and the member's capacity, and
    ``group + b"\\0"`` to the group's version: a fresh sequence number whenever its members
    change, so a process may reuse the members it read for the same version.
``f`` (full counts)
    per channel, the sends refused at capacity; ``b"*"`` (no channel name has ``*``) holds
    the total.
``w`` (wake-ups)
    ``key + b"\\0" + token``: the process whose doorbell is *token* waits on *key* (a normal
    channel or an owner prefix), so a send rings it.

The main database holds the format marker and the sequence counter.
"""

from __future__ import annotations

import itertools
import logging
import operator
import os
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb

from channels_core.exceptions import ImproperlyConfigured, LayerUnavailable

logger = logging.getLogger(__name__)

FORMAT_KEY = b"channels-ipc"
FORMAT = b"channels-ipc/2"
_SEQ_KEY = b"seq"
_SEQ = struct.Struct(">Q")
_EXPIRES = struct.Struct("<d")
_COUNT = struct.Struct("<Q")
_MEMBER = struct.Struct("<dQ")
_NAMES = struct.Struct("<I")
_ZERO = _COUNT.pack(0)
# Per owner: the messages in its queue, and whether its channels are counted one by one.
_OWNED = struct.Struct("<Q?")
_TOTAL = b"*"
_OWNER_KEY = b"!"
_DATABASES = (b"m", b"n", b"g", b"f", b"w")

# A message taken from an owner's queue: (its channels, expires_at, packed message).
Taken = tuple[list[str], float, bytes]
# How many groups' members a process keeps read, for the group sends to come.
_GROUPS_KEPT = 256


class _Members:
    """The members of a group read at one version of it, arranged for group sends."""

    __slots__ = ("normal", "owned", "until", "version")

    def __init__(self, version: bytes | None) -> None:
        self.version = version
        # The normal members with their capacities.
        self.normal: list[tuple[bytes, int]] = []
        # Per owner: its members' names, their capacities, and the names joined as stored.
        self.owned: dict[bytes, tuple[list[bytes], list[int], bytes]] = {}
        # When the first of these memberships expires.
        self.until = float("inf")


def _queue_key(name: bytes) -> bytes:
    """The key prefix of the queue holding the messages of the channel named *name*."""
    bang = name.find(b"!")
    if bang < 0:
        return b"c" + name + b"\0"
    return b"o" + name[: bang + 1] + b"\0"


def _wake_key(name: bytes) -> bytes:
    """What a receiver of channel *name* registers to be rung for: the channel, or its owner."""
    bang = name.find(b"!")
    return name if bang < 0 else name[: bang + 1]


# LMDB allows one open environment per file in a process (a second one's close would drop
# the first one's file locks), so the layers of one process share their stores.
_open_stores: dict[Path, Store] = {}
_open_stores_lock = threading.Lock()


def open_store(path: Path, map_size: int) -> Store:
    """The store in directory *path*, opened once per process and shared by its layers.

    Release it with :meth:`Store.release`. *map_size* applies when this call opens it.
    """
    path = path.resolve()
    with _open_stores_lock:
        store = _open_stores.get(path)
        if store is None:
            store = _open_stores[path] = Store(path, map_size)
        store.users += 1
        return store


def _forget_after_fork() -> None:
    # A forked child must not use its parent's environments (LMDB forbids it); it opens its
    # own when it builds a layer.
    _open_stores.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


class Store:
    """The LMDB environment at *path*, with one method per transaction the layer runs.

    Calls must hold :attr:`lock`, shared by every layer of this process on the store.
    """

    def __init__(self, path: Path, map_size: int) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.users = 0
        self._members: dict[bytes, _Members] = {}
        try:
            self.env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=len(_DATABASES),
                # Reads (statistics) take a slot each; room for many processes' threads.
                max_readers=1024,
                # A process killed mid-write cannot corrupt the store either way; syncing
                # would only protect against a machine crash, which loses the processes too.
                sync=False,
                metasync=False,
                readahead=False,
            )
        except (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError) as error:
            raise ImproperlyConfigured(
                f"The IPC layer cannot use {str(path / 'data.mdb')!r}: it is not a "
                f"channels-ipc store, or it is damaged ({error}). Remove the directory's "
                "data.mdb and lock.mdb, or point the layer's 'path' elsewhere."
            ) from error
        except lmdb.Error as error:
            raise ImproperlyConfigured(
                f"The IPC layer cannot open its store in {str(path)!r} ({error}): give it a "
                "writable directory of its own as 'path'."
            ) from error
        try:
            with self.env.begin(write=True) as txn:
                marker = txn.get(FORMAT_KEY)
                if marker is None:
                    if _has_foreign_keys(txn):
                        raise ImproperlyConfigured(
                            f"The LMDB store in {str(path)!r} belongs to another program (it "
                            "has no channels-ipc marker): point the IPC layer's 'path' at a "
                            "directory of its own."
                        )
                    txn.put(FORMAT_KEY, FORMAT)
                elif marker != FORMAT:
                    raise ImproperlyConfigured(
                        f"The store in {str(path)!r} has format {marker!r}, not {FORMAT!r}: "
                        "it was written by another version of channels-ipc; stop the "
                        "processes using it and remove its data.mdb and lock.mdb."
                    )
            self.messages, self.counts, self.groups, self.full, self.wakes = (
                self.env.open_db(name) for name in _DATABASES
            )
            # Reader slots left by processes killed during a read are freed here.
            self.env.reader_check()
        except BaseException:
            self.env.close()
            raise

    @contextmanager
    def _write(self) -> Iterator[lmdb.Transaction]:
        try:
            try:
                txn = self.env.begin(write=True)
            except lmdb.MapResizedError:
                # Another process opened the store with a bigger map_size and grew it.
                self.env.set_mapsize(0)
                txn = self.env.begin(write=True)
            with txn:
                yield txn
        except lmdb.MapFullError as error:
            raise LayerUnavailable(
                f"The IPC layer's store in {str(self.path)!r} is full ({error}): receive the "
                "pending messages, or raise the layer's 'map_size' option."
            ) from error

    def release(self) -> None:
        """One layer is done with the store; the last one closes it (the data stays)."""
        with _open_stores_lock:
            self.users -= 1
            if self.users:
                return
            if _open_stores.get(self.path) is self:
                del _open_stores[self.path]
        self.env.close()

    # Messages ---------------------------------------------------------------------------

    def send(
        self, channel: str, data: bytes, capacity: int, expires_at: float, now: float
    ) -> list[bytes] | None:
        """Store a message; the tokens to ring, or None when *channel* is full."""
        name = channel.encode()
        with self._write() as txn:
            bang = name.find(b"!")
            if bang < 0:
                if not self._reserve(txn, name, capacity, now):
                    return None
            elif not self._reserve_owned(txn, name[: bang + 1], [name], [capacity], now):
                return None
            stamp = _EXPIRES.pack(expires_at)
            key = _queue_key(name) + _SEQ.pack(_next_seq(txn, 1))
            if name.find(b"!") < 0:
                txn.put(key, stamp + data, db=self.messages)
            else:
                value = stamp + _NAMES.pack(len(name)) + name + data
                txn.put(key, value, db=self.messages)
            return self._tokens(txn, _wake_key(name))

    def group_send(
        self, group: str, data: bytes, expires_at: float, now: float
    ) -> tuple[dict[bytes, set[str]], int]:
        """Store a message for every member; the keys to ring per token, and the full count."""
        stamp = _EXPIRES.pack(expires_at)
        full = 0
        with self._write() as txn:
            members = self._group(txn, group.encode() + b"\0", now)
            if not members.normal and not members.owned:
                return {}, 0
            seq = _next_seq(txn, len(members.normal) + len(members.owned))
            keys: list[bytes] = []
            for name, capacity in members.normal:
                if not self._reserve(txn, name, capacity, now):
                    full += 1
                    continue
                txn.put(b"c" + name + b"\0" + _SEQ.pack(seq), stamp + data, db=self.messages)
                seq += 1
                keys.append(name)
            for owner, (names, capacities, joined) in members.owned.items():
                accepted = self._reserve_owned(txn, owner, names, capacities, now)
                if accepted is not names:
                    full += len(names) - len(accepted)
                    if not accepted:
                        continue
                    joined = b"\n".join(accepted)
                value = stamp + _NAMES.pack(len(joined)) + joined + data
                txn.put(b"o" + owner + b"\0" + _SEQ.pack(seq), value, db=self.messages)
                seq += 1
                keys.append(owner)
            rings: dict[bytes, set[str]] = {}
            for key in keys:
                for token in self._tokens(txn, key):
                    rings.setdefault(token, set()).add(key.decode())
        return rings, full

    def _group(self, txn: lmdb.Transaction, prefix: bytes, now: float) -> _Members:
        """The live members of the group whose keys start with *prefix*.

        Read again only when the group's version changed or a membership expired since the
        last read (expired ones are deleted then).
        """
        version = txn.get(prefix, db=self.groups)
        members = self._members.get(prefix)
        if members is not None and members.version == version and now < members.until:
            return members
        members = _Members(version)
        expired = []
        cursor = txn.cursor(self.groups)
        if cursor.set_range(prefix):
            start = len(prefix)
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                if len(key) == start:
                    continue  # the version
                member_until, capacity = _MEMBER.unpack(value)
                if member_until <= now:
                    expired.append(key)
                    continue
                members.until = min(members.until, member_until)
                name = key[start:]
                bang = name.find(b"!")
                if bang < 0:
                    members.normal.append((name, capacity))
                    continue
                owner = name[: bang + 1]
                names = members.owned.get(owner)
                if names is None:
                    names = members.owned[owner] = ([], [], b"")
                names[0].append(name)
                names[1].append(capacity)
        members.owned = {
            owner: (names, capacities, b"\n".join(names))
            for owner, (names, capacities, _) in members.owned.items()
        }
        if expired:
            for key in expired:
                txn.delete(key, db=self.groups)
            members.version = self._new_version(txn, prefix)
        if len(self._members) >= _GROUPS_KEPT:
            self._members.clear()
        self._members[prefix] = members
        return members

    def _new_version(self, txn: lmdb.Transaction, prefix: bytes) -> bytes:
        """Mark the group of *prefix* changed; its new version."""
        version = _SEQ.pack(_next_seq(txn, 1))
        txn.put(prefix, version, db=self.groups)
        return version

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
        txn.put(_OWNER_KEY + owner, _OWNED.pack(queued + bool(names), counted), db=self.counts)
        return names

    def _owner(self, txn: lmdb.Transaction, owner: bytes) -> tuple[int, bool]:
        """The messages in *owner*'s queue, and whether its channels are counted one by one."""
        stored = txn.get(_OWNER_KEY + owner, db=self.counts)
        return _OWNED.unpack(stored) if stored else (0, False)

    def _count_channels(self, txn: lmdb.Transaction, owner: bytes) -> None:
        """Start counting the messages of *owner*'s channels one by one."""
        queue = b"o" + owner + b"\0"
        counted: Counter[bytes] = Counter()
        cursor = txn.cursor(self.messages)
        if cursor.set_range(queue):
            for key, value in cursor:
                if not key.startswith(queue):
                    break
                counted.update(_names_of(queue, value)[0])
        names = sorted(counted)
        cursor = txn.cursor(self.counts)
        counts = map(_COUNT.pack, map(counted.__getitem__, names))
        cursor.putmulti(zip(names, counts, strict=True))

    def _reserve_each(
        self, txn: lmdb.Transaction, names: list[bytes], capacities: list[int], now: float
    ) -> list[bytes]:
        """Count one more message for each of the counted channels *names*; those that had
        room."""
        cursor = txn.cursor(self.counts)
        counted = dict(cursor.getmulti(names))
        stored = b"".join(map(counted.get, names, itertools.repeat(_ZERO)))
        counts = struct.unpack(f"<{len(names)}Q", stored)
        if all(map(operator.lt, counts, capacities)):
            cursor.putmulti(zip(names, map(_COUNT.pack, map((1).__add__, counts)), strict=True))
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
        count = _COUNT.unpack(counted)[0] if counted else 0
        if count >= capacity:
            # Expired messages at the head of the queue do not hold capacity.
            self._drop_expired(txn, _queue_key(name), now)
            counted = txn.get(name, db=self.counts)
            count = _COUNT.unpack(counted)[0] if counted else 0
            if count >= capacity:
                _increment(txn, self.full, name)
                _increment(txn, self.full, _TOTAL)
                return False
        txn.put(name, _COUNT.pack(count + 1), db=self.counts)
        return True

    def _drop_expired(self, txn: lmdb.Transaction, queue: bytes, now: float) -> None:
        """Delete the expired messages at the head of *queue*: a normal channel's, or the
        queue of an owner whose channels are counted one by one."""
        dropped = 0
        cursor = txn.cursor(self.messages)
        found = cursor.set_range(queue)
        while found and cursor.key().startswith(queue):
            value = cursor.value()
            if _EXPIRES.unpack_from(value)[0] > now:
                break
            for name in _names_of(queue, value)[0]:
                self._uncount(txn, name)
            dropped += 1
            found = cursor.delete()
        if dropped and queue[:1] == b"o":
            owner = queue[1:-1]
            # Counted one by one still: the caller goes on counting a channel of it.
            queued = self._owner(txn, owner)[0] - dropped
            txn.put(_OWNER_KEY + owner, _OWNED.pack(queued, True), db=self.counts)

    def _set_owner(self, txn: lmdb.Transaction, owner: bytes, queued: int, counted: bool) -> None:
        """Record the messages left in *owner*'s queue; with none, its channels hold none."""
        if queued:
            txn.put(_OWNER_KEY + owner, _OWNED.pack(queued, counted), db=self.counts)
            return
        if counted:
            self._clear_counts(txn, owner)
        txn.delete(_OWNER_KEY + owner, db=self.counts)

    def _uncount(self, txn: lmdb.Transaction, channel: bytes, removed: int = 1) -> None:
        counted = txn.get(channel, db=self.counts)
        count = _COUNT.unpack(counted)[0] - removed if counted else 0
        if count > 0:
            txn.put(channel, _COUNT.pack(count), db=self.counts)
        else:
            txn.delete(channel, db=self.counts)

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
                if _EXPIRES.unpack_from(value)[0] > now:
                    more = found and cursor.key().startswith(queue)
                    return value[_EXPIRES.size :], more
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
                end = _EXPIRES.size + _NAMES.size + _NAMES.unpack_from(value, _EXPIRES.size)[0]
                # Decoded and split once per message, however many channels it is for.
                names = value[_EXPIRES.size + _NAMES.size : end].decode().split("\n")
                removed.append(names)
                expires_at = _EXPIRES.unpack_from(value)[0]
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

    def _clear_counts(self, txn: lmdb.Transaction, owner: bytes) -> None:
        """Delete the counts of every channel of *owner*."""
        cursor = txn.cursor(self.counts)
        if not cursor.set_range(owner):
            return
        # A delete moves to the next record; past the last one, the key is empty.
        while cursor.key().startswith(owner):
            cursor.delete()

    # Wake-ups ---------------------------------------------------------------------------

    def _tokens(self, txn: lmdb.Transaction, key: bytes) -> list[bytes]:
        prefix = key + b"\0"
        cursor = txn.cursor(self.wakes)
        tokens = []
        if cursor.set_range(prefix):
            for registered in cursor.iternext(values=False):
                if not registered.startswith(prefix):
                    break
                tokens.append(registered[len(prefix) :])
        return tokens

    def unregister(self, pairs: Iterable[tuple[str, bytes]]) -> None:
        """Stop ringing each ``(key, token)`` of *pairs*."""
        with self._write() as txn:
            for key, token in pairs:
                txn.delete(key.encode() + b"\0" + token, db=self.wakes)

    def registered_tokens(self) -> set[bytes]:
        """Every token some key is registered for."""
        with self.env.begin() as txn:
            return {
                key[key.index(b"\0") + 1 :] for key in txn.cursor(self.wakes).iternext(values=False)
            }

    def forget_tokens(self, tokens: set[bytes]) -> None:
        """Drop every registration of *tokens* (their processes are gone)."""
        with self._write() as txn:
            cursor = txn.cursor(self.wakes)
            cursor.first()
            # A delete moves to the next record; past the last one, the key is empty.
            while key := cursor.key():
                dead = key[key.index(b"\0") + 1 :] in tokens
                if dead:
                    cursor.delete()
                else:
                    cursor.next()

    # Groups -----------------------------------------------------------------------------

    def group_add(self, group: str, channel: str, member_until: float, capacity: int) -> None:
        """Add *channel* to *group* (or renew it) until *member_until*."""
        prefix = group.encode() + b"\0"
        with self._write() as txn:
            txn.put(prefix + channel.encode(), _MEMBER.pack(member_until, capacity), db=self.groups)
            self._new_version(txn, prefix)

    def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*."""
        prefix = group.encode() + b"\0"
        with self._write() as txn:
            if txn.delete(prefix + channel.encode(), db=self.groups):
                self._new_version(txn, prefix)

    def group_members(self, group: str, now: float) -> list[str]:
        """The members of *group* whose membership has not expired, in name order."""
        prefix = group.encode() + b"\0"
        members = []
        with self.env.begin() as txn:
            cursor = txn.cursor(self.groups)
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    # The group's version has no name after the prefix.
                    if len(key) > len(prefix) and _MEMBER.unpack(value)[0] > now:
                        members.append(key[len(prefix) :].decode())
        return members

    # Flush, statistics and checks ----------------------------------------------------------------

    def flush(self) -> None:
        """Drop every message, count, group and full count; wake-up registrations stay."""
        with self._write() as txn:
            for db in (self.messages, self.counts, self.groups, self.full):
                txn.drop(db, delete=False)

    def stats(self, channel: str | None, now: float) -> tuple[int, float | None, int]:
        """``(pending, earliest expiry, full count)`` of *channel*, or of every channel."""
        pending = 0
        earliest = None
        if channel is None:
            scan, name, full_key = (b"c", b"o"), None, _TOTAL
        else:
            name = full_key = channel.encode()
            scan = (_queue_key(name),)
        with self.env.begin() as txn:
            cursor = txn.cursor(self.messages)
            for queue in scan:
                found = cursor.set_range(queue)
                while found:
                    key, value = cursor.item()
                    if not key.startswith(queue):
                        break
                    found = cursor.next()
                    expires_at = _EXPIRES.unpack_from(value)[0]
                    if expires_at <= now:
                        continue
                    names = _names_of(key[: key.index(b"\0") + 1], value)[0]
                    count = len(names) if name is None else names.count(name)
                    if count:
                        pending += count
                        if earliest is None or expires_at < earliest:
                            earliest = expires_at
            counted = txn.get(full_key, db=self.full)
        return pending, earliest, _COUNT.unpack(counted)[0] if counted else 0

    def verify(self) -> list[str]:
        """The inconsistencies found in the store, as sentences (empty when it is sound).

        Checks that every message is well formed and sits in its channel's queue, that each
        owner's count is its number of messages, and that each channel counted one by one has
        its number of messages as count (and the others no count).
        """
        problems = []
        found: dict[bytes, int] = {}
        queued: dict[bytes, int] = {}
        with self.env.begin() as txn:
            for key, value in txn.cursor(self.messages):
                try:
                    names = _parse(key, value)
                except ValueError as error:
                    problems.append(f"Bad message: {error}.")
                    continue
                for name in names:
                    found[name] = found.get(name, 0) + 1
                if key[:1] == b"o":
                    owner = key[1 : key.index(b"\0")]
                    queued[owner] = queued.get(owner, 0) + 1
            counts, owners = {}, {}
            for key, value in txn.cursor(self.counts):
                if key.startswith(_OWNER_KEY):
                    owners[key[len(_OWNER_KEY) :]] = _OWNED.unpack(value)
                else:
                    counts[key] = _COUNT.unpack(value)[0]
        for owner in sorted(set(queued) | set(owners)):
            counted = owners.get(owner, (0, False))[0]
            if queued.get(owner, 0) != counted:
                problems.append(
                    f"Owner {owner.decode()!r} holds {queued.get(owner, 0)} messages but "
                    f"counts {counted}."
                )
        for name in sorted(set(found) | set(counts)):
            bang = name.find(b"!")
            if bang >= 0 and not owners.get(name[: bang + 1], (0, False))[1]:
                if name in counts:
                    problems.append(
                        f"Channel {name.decode()!r} has a count of its own, but its owner's "
                        "channels are not counted one by one."
                    )
            elif found.get(name, 0) != counts.get(name, 0):
                problems.append(
                    f"Channel {name.decode()!r} holds {found.get(name, 0)} messages but "
                    f"counts {counts.get(name, 0)}."
                )
        return problems


def _parse(key: bytes, value: bytes) -> list[bytes]:
    """The channel names of the stored message *key*: *value*; ValueError when malformed."""
    queue_end = key.find(b"\0") + 1
    if not queue_end or len(key) != queue_end + _SEQ.size or key[:1] not in (b"c", b"o"):
        raise ValueError(f"malformed message key {key!r}")
    queue = key[:queue_end]
    try:
        names, end = _names_of(queue, value)
    except (IndexError, struct.error) as error:
        raise ValueError(f"message {key!r} is truncated") from error
    if end > len(value) or not names:
        raise ValueError(f"message {key!r} is truncated")
    for name in names:
        if _queue_key(name) != queue:
            raise ValueError(f"message {key!r} names channel {name!r} of another queue")
    return names


def _names_of(queue: bytes, value: bytes) -> tuple[list[bytes], int]:
    """The channel names a stored message *value* of *queue* is for, and where its data starts."""
    if queue[:1] == b"c":
        return [queue[1:-1]], _EXPIRES.size
    start = _EXPIRES.size + _NAMES.size
    end = start + _NAMES.unpack_from(value, _EXPIRES.size)[0]
    return value[start:end].split(b"\n"), end


def _next_seq(txn: lmdb.Transaction, count: int) -> int:
    """Reserve *count* sequence numbers; the first of them."""
    stored = txn.get(_SEQ_KEY)
    first = _SEQ.unpack(stored)[0] if stored else 1
    txn.put(_SEQ_KEY, _SEQ.pack(first + count))
    return first


def _increment(txn: lmdb.Transaction, db: lmdb._Database, key: bytes) -> None:
    counted = txn.get(key, db=db)
    txn.put(key, _COUNT.pack((_COUNT.unpack(counted)[0] if counted else 0) + 1), db=db)


def _has_foreign_keys(txn: lmdb.Transaction) -> bool:
    """True when the main database holds anything (a store of another program)."""
    return txn.cursor().first()
