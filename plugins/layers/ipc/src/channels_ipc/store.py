"""The shared state of the IPC layer: one LMDB environment in the layer's directory.

LMDB gives what a store shared by processes that may be killed at any moment needs: every
change is a transaction, written copy-on-write and made visible by one meta page update, so a
process killed mid-transaction leaves the last committed state; and its one writer lock is a
robust process-shared mutex, which the next process to take it recovers from a dead owner.

The store is one class, :class:`Store`, with one method per transaction the layer runs,
gathered from a module per part of the state:

:mod:`.layout`
    the databases, their keys and values (format ``channels-ipc/3``);
:mod:`.environment`
    opening the LMDB environment, checking its format, write transactions;
:mod:`.queues`
    sending to one channel, and taking messages;
:mod:`.capacity`
    the counts that decide when a channel is full;
:mod:`.groups`
    memberships, and sending to a group;
:mod:`.presence`
    the present members of groups, and ending those of dead processes;
:mod:`.history`
    the kept messages of the groups that keep history, and the store's epoch;
:mod:`.registrations`
    which process's doorbell a send rings;
:mod:`.delays`
    the delayed messages (``asgi.delay``), kept until due;
:mod:`.stats`
    statistics and consistency checks.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from channels_core.history import new_epoch

from .delays import DelayedMessages
from .groups import Groups
from .layout import EPOCH_KEY
from .stats import Statistics

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


class Store(DelayedMessages, Groups, Statistics):
    """The LMDB environment at *path*, with one method per transaction the layer runs.

    Calls must hold :attr:`lock`, shared by every layer of this process on the store.
    """

    def __init__(self, path: Path, map_size: int) -> None:
        self.lock = threading.Lock()
        self.users = 0
        super().__init__(path, map_size)

    def release(self) -> None:
        """One layer is done with the store; the last one closes it (the data stays)."""
        with _open_stores_lock:
            self.users -= 1
            if self.users:
                return
            if _open_stores.get(self.path) is self:
                del _open_stores[self.path]
        self.env.close()

    def flush(self) -> None:
        """Drop every message, delayed message, count, group, presence, history and full
        count, and start a new history epoch; wake-up registrations stay."""
        with self._write() as txn:
            for db in (
                self.messages,
                self.counts,
                self.groups,
                self.full,
                self.presence,
                self.history,
                self.delays,
            ):
                txn.drop(db, delete=False)
            txn.put(EPOCH_KEY, new_epoch().encode())
