"""The LMDB environment under the IPC layer's store: opening it, and write transactions.

LMDB gives what a store shared by processes that may be killed at any moment needs: every
change is a transaction, written copy-on-write and made visible by one meta page update, so a
process killed mid-transaction leaves the last committed state; and its one writer lock is a
robust process-shared mutex, which the next process to take it recovers from a dead owner.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb

from channels_core.exceptions import ImproperlyConfigured, LayerUnavailable
from channels_core.history import new_epoch

from .layout import DATABASES, EPOCH_KEY, FORMAT, FORMAT_KEY


class Environment:
    """The LMDB environment at *path*, in the ``channels-ipc/3`` format, and its databases."""

    def __init__(self, path: Path, map_size: int) -> None:
        self.path = path
        try:
            self.env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=len(DATABASES),
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
                    # A new store starts a new history epoch: positions given out by a store
                    # that was deleted are then recognised as such.
                    txn.put(EPOCH_KEY, new_epoch().encode())
                elif marker != FORMAT:
                    raise ImproperlyConfigured(
                        f"The store in {str(path)!r} has format {marker!r}, not {FORMAT!r}: "
                        "it was written by another version of channels-ipc; stop the "
                        "processes using it and remove its data.mdb and lock.mdb."
                    )
            (
                self.messages,
                self.counts,
                self.groups,
                self.full,
                self.wakes,
                self.presence,
                self.history,
                self.delays,
            ) = (self.env.open_db(name) for name in DATABASES)
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


def _has_foreign_keys(txn: lmdb.Transaction) -> bool:
    """True when the main database holds anything (a store of another program)."""
    return txn.cursor().first()
