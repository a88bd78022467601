"""Presence (database ``p``): the info of a group's present members, and who made them present.

Each present member is stored with the identity of the process that added it
(:mod:`.liveness`). A reader returns the members whose process runs and whose membership
(database ``g``) has not expired, and removes the others: a killed process's members are
gone as soon as it is.
"""

from __future__ import annotations

import lmdb

from . import layout
from .environment import Environment
from .liveness import IDENTITY, is_alive

# Assigned, not imported by name, to keep their calls method calls: see layout.py.
MEMBER = layout.MEMBER


class Presence(Environment):
    """The store's transactions on presence."""

    def group_presence(self, group: str, now: float) -> dict[str, bytes]:
        """The packed info of *group*'s present members, by channel; removes the stale ones
        (their process dead, or their membership expired or gone)."""
        prefix = group.encode() + b"\0"
        alive: dict[bytes, bool] = {}
        present, stale = {}, []
        with self.env.begin() as txn:
            cursor = txn.cursor(self.presence)
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    if self._stale(txn, key, value, now, alive):
                        stale.append((key, value))
                    else:
                        present[key[len(prefix) :].decode()] = value[IDENTITY.size :]
        if stale:
            with self._write() as txn:
                for key, value in stale:
                    # Checked again: another process may have added the member again since.
                    if txn.get(key, db=self.presence) == value and self._stale(
                        txn, key, value, now, alive
                    ):
                        txn.delete(key, db=self.presence)
        return present

    def _stale(
        self,
        txn: lmdb.Transaction,
        key: bytes,
        value: bytes,
        now: float,
        alive: dict[bytes, bool],
    ) -> bool:
        """Whether the presence *key*: *value* has ended; *alive* caches liveness by identity."""
        membership = txn.get(key, db=self.groups)
        if membership is None or MEMBER.unpack(membership)[0] <= now:
            return True
        identity = value[: IDENTITY.size]
        if identity not in alive:
            alive[identity] = is_alive(identity)
        return not alive[identity]
