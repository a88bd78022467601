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
    with the value ``expires_at + count + (len(channel) + channel) * count + packed message``:
    one entry carries a message to all the owner's channels a group send reaches, and the
    owner takes the messages of all its channels in one ordered scan. ``seq`` is a big-endian
    counter shared by every queue: key order is send order.
``n`` (counts)
    the number of stored messages of each channel, for capacity.
``g`` (groups)
    ``group + b"\\0" + channel`` to the membership's expiry and the member's capacity.
``f`` (full counts)
    per channel, the sends refused at capacity; ``b"*"`` (no channel name has ``*``) holds
    the total.
``w`` (wake-ups)
    ``key + b"\\0" + token``: the process whose doorbell is *token* waits on *key* (a normal
    channel or an owner prefix), so a send rings it.

The main database holds the format marker and the sequence counter.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb

from channels_core.exceptions import ImproperlyConfigured, LayerUnavailable

logger = logging.getLogger(__name__)

FORMAT_KEY = b"channels-ipc"
FORMAT = b"channels-ipc/1"
_SEQ_KEY = b"seq"
_SEQ = struct.Struct(">Q")
_EXPIRES = struct.Struct("<d")
_COUNT = struct.Struct("<Q")
_MEMBER = struct.Struct("<dQ")
_NAMES = struct.Struct("<H")
_MAX_NAMES = 0xFFFF
_TOTAL = b"*"
_DATABASES = (b"m", b"n", b"g", b"f", b"w")

# A message taken from the store: (channel, expires_at, packed message).
Taken = tuple[str, float, bytes]


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
            if not self._reserve(txn, name, capacity, now):
                return None
            stamp = _EXPIRES.pack(expires_at)
            key = _queue_key(name) + _SEQ.pack(_next_seq(txn, 1))
            if name.find(b"!") < 0:
                txn.put(key, stamp + data, db=self.messages)
            else:
                value = stamp + _NAMES.pack(1) + bytes((len(name),)) + name + data
                txn.put(key, value, db=self.messages)
            return self._tokens(txn, _wake_key(name))

    def group_send(
        self, group: str, data: bytes, expires_at: float, now: float
    ) -> tuple[dict[bytes, set[str]], int]:
        """Store a message for every member; the keys to ring per token, and the full count."""
        prefix = group.encode() + b"\0"
        stamp = _EXPIRES.pack(expires_at)
        full = 0
        with self._write() as txn:
            cursor = txn.cursor(self.groups)
            members = []
            expired = []
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    member_until, capacity = _MEMBER.unpack(value)
                    if member_until <= now:
                        expired.append(key)
                    else:
                        members.append((key[len(prefix) :], capacity))
            for key in expired:
                txn.delete(key, db=self.groups)
            if not members:
                return {}, 0
            seq = _next_seq(txn, len(members))
            keys: set[bytes] = set()
            # Per owner, the members it owns (each name after its length): one entry for all.
            owned: dict[bytes, list[bytes]] = {}
            for name, capacity in members:
                if not self._reserve(txn, name, capacity, now):
                    full += 1
                    continue
                bang = name.find(b"!")
                if bang < 0:
                    txn.put(b"c" + name + b"\0" + _SEQ.pack(seq), stamp + data, db=self.messages)
                    seq += 1
                    keys.add(name)
                else:
                    owner = name[: bang + 1]
                    names = owned.get(owner)
                    if names is None:
                        names = owned[owner] = []
                    names.append(bytes((len(name),)) + name)
            for owner, names in owned.items():
                for start in range(0, len(names), _MAX_NAMES):
                    chunk = names[start : start + _MAX_NAMES]
                    value = stamp + _NAMES.pack(len(chunk)) + b"".join(chunk) + data
                    txn.put(b"o" + owner + b"\0" + _SEQ.pack(seq), value, db=self.messages)
                    seq += 1
                keys.add(owner)
            rings: dict[bytes, set[str]] = {}
            for key in keys:
                for token in self._tokens(txn, key):
                    rings.setdefault(token, set()).add(key.decode())
        return rings, full

    def _reserve(self, txn: lmdb.Transaction, name: bytes, capacity: int, now: float) -> bool:
        """Count one more message for channel *name*; False (counted as full) at capacity."""
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
        """Delete the expired messages at the head of *queue*."""
        cursor = txn.cursor(self.messages)
        if not cursor.set_range(queue):
            return
        while cursor.key().startswith(queue):
            value = cursor.value()
            if _EXPIRES.unpack_from(value)[0] > now:
                return
            for name in _names_of(queue, value)[0]:
                self._uncount(txn, name)
            if not cursor.delete():
                return

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
        """The unexpired messages of *owner*'s channels, in send order: *limit* or a few more.

        Registers *register* like :meth:`take` when there is nothing to take.
        """
        queue = b"o" + owner.encode() + b"\0"
        taken: list[Taken] = []
        removed: dict[bytes, int] = {}
        with self._write() as txn:
            cursor = txn.cursor(self.messages)
            found = cursor.set_range(queue)
            while found and len(taken) < limit and cursor.key().startswith(queue):
                value = cursor.value()
                found = cursor.delete()
                names, end = _names_of(queue, value)
                expires_at = _EXPIRES.unpack_from(value)[0]
                live = expires_at > now
                data = value[end:]
                for name in names:
                    removed[name] = removed.get(name, 0) + 1
                    if live:
                        taken.append((name.decode(), expires_at, data))
            # Counted down once per channel, not once per message.
            for name, count in removed.items():
                self._uncount(txn, name, count)
            if not taken and register is not None:
                txn.put(owner.encode() + b"\0" + register, b"", db=self.wakes)
        return taken

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
        with self._write() as txn:
            key = group.encode() + b"\0" + channel.encode()
            txn.put(key, _MEMBER.pack(member_until, capacity), db=self.groups)

    def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*."""
        with self._write() as txn:
            txn.delete(group.encode() + b"\0" + channel.encode(), db=self.groups)

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
                    if _MEMBER.unpack(value)[0] > now:
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

        Checks that every message is well formed and sits in its channel's queue, and that
        each channel's count is its number of messages.
        """
        problems = []
        found: dict[bytes, int] = {}
        with self.env.begin() as txn:
            for key, value in txn.cursor(self.messages):
                try:
                    names = _parse(key, value)
                except ValueError as error:
                    problems.append(f"Bad message: {error}.")
                    continue
                for name in names:
                    found[name] = found.get(name, 0) + 1
            counts = {name: _COUNT.unpack(value)[0] for name, value in txn.cursor(self.counts)}
        for name in sorted(set(found) | set(counts)):
            if found.get(name, 0) != counts.get(name, 0):
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
    offset = _EXPIRES.size + _NAMES.size
    names = []
    for _ in range(_NAMES.unpack_from(value, _EXPIRES.size)[0]):
        end = offset + 1 + value[offset]
        names.append(value[offset + 1 : end])
        offset = end
    return names, offset


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
