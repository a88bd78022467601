"""Wake-up registrations (database ``w``): whose doorbell a send to a key rings.

The doorbells themselves, and the ringing, are in :mod:`.wake`.
"""

from __future__ import annotations

from collections.abc import Iterable

import lmdb

from .environment import Environment


class WakeRegistrations(Environment):
    """The store's transactions on wake-up registrations."""

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
