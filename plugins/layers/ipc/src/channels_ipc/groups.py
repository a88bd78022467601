"""Groups (database ``g``): memberships with an expiry, and sending to every member.

A process keeps the members it read of a group, with the group's version, and reads them
again only when an add, a discard or an expiry changed it. Presence (:mod:`.presence`) and
history (:mod:`.history`) change in the same transactions as the memberships and the sends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lmdb

from channels_core.history import Retention

from . import layout
from .capacity import Capacity
from .history import GroupHistory
from .layout import next_seq
from .presence import Presence
from .registrations import WakeRegistrations

# Assigned, not imported by name, to keep their calls method calls: see layout.py.
EXPIRES, MEMBER, NAMES, SEQ = layout.EXPIRES, layout.MEMBER, layout.NAMES, layout.SEQ

# How many groups' members a process keeps read, for the group sends to come.
_GROUPS_KEPT = 256


class Members:
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


# For a group that keeps history: its retention, and how to pack the members' message with
# the position ``(epoch, offset)`` the send gets.
Keeping = tuple[Retention, Callable[[tuple[str, int]], bytes]]


class Groups(Capacity, WakeRegistrations, Presence, GroupHistory):
    """The store's transactions on groups."""

    def __init__(self, path: Path, map_size: int) -> None:
        # Per group prefix, the members last read.
        self._members: dict[bytes, Members] = {}
        super().__init__(path, map_size)

    def group_send(
        self, group: str, data: bytes, expires_at: float, now: float, keeping: Keeping | None
    ) -> tuple[dict[bytes, set[str]], int, tuple[str, int] | None]:
        """Store a message for every member, and keep it in the group's history when
        *keeping*; the keys to ring per token, the full count, and the message's position
        (None without history)."""
        stamp = EXPIRES.pack(expires_at)
        full = 0
        prefix = group.encode() + b"\0"
        position = None
        with self._write() as txn:
            if keeping is not None:
                retention, with_position = keeping
                position = self._keep(txn, prefix, data, retention, now)
                data = with_position(position)
            members = self._group(txn, prefix, now)
            if not members.normal and not members.owned:
                return {}, 0, position
            seq = next_seq(txn, len(members.normal) + len(members.owned))
            keys: list[bytes] = []
            for name, capacity in members.normal:
                if not self._reserve(txn, name, capacity, now):
                    full += 1
                    continue
                txn.put(b"c" + name + b"\0" + SEQ.pack(seq), stamp + data, db=self.messages)
                seq += 1
                keys.append(name)
            for owner, (names, capacities, joined) in members.owned.items():
                accepted = self._reserve_owned(txn, owner, names, capacities, now)
                if accepted is not names:
                    full += len(names) - len(accepted)
                    if not accepted:
                        continue
                    joined = b"\n".join(accepted)
                value = stamp + NAMES.pack(len(joined)) + joined + data
                txn.put(b"o" + owner + b"\0" + SEQ.pack(seq), value, db=self.messages)
                seq += 1
                keys.append(owner)
            rings: dict[bytes, set[str]] = {}
            for key in keys:
                for token in self._tokens(txn, key):
                    rings.setdefault(token, set()).add(key.decode())
        return rings, full, position

    def _group(self, txn: lmdb.Transaction, prefix: bytes, now: float) -> Members:
        """The live members of the group whose keys start with *prefix*.

        Read again only when the group's version changed or a membership expired since the
        last read (expired ones are deleted then).
        """
        version = txn.get(prefix, db=self.groups)
        members = self._members.get(prefix)
        if members is not None and members.version == version and now < members.until:
            return members
        members = Members(version)
        expired = []
        cursor = txn.cursor(self.groups)
        if cursor.set_range(prefix):
            start = len(prefix)
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                if len(key) == start:
                    continue  # the version
                member_until, capacity = MEMBER.unpack(value)
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
                txn.delete(key, db=self.presence)
            members.version = self._new_version(txn, prefix)
        if len(self._members) >= _GROUPS_KEPT:
            self._members.clear()
        self._members[prefix] = members
        return members

    def _new_version(self, txn: lmdb.Transaction, prefix: bytes) -> bytes:
        """Mark the group of *prefix* changed; its new version."""
        version = SEQ.pack(next_seq(txn, 1))
        txn.put(prefix, version, db=self.groups)
        return version

    def group_add(
        self,
        group: str,
        channel: str,
        member_until: float,
        capacity: int,
        presence: bytes | None,
    ) -> None:
        """Add *channel* to *group* (or renew it) until *member_until*; with *presence* (this
        process's identity and the packed info), make it present too."""
        prefix = group.encode() + b"\0"
        key = prefix + channel.encode()
        with self._write() as txn:
            txn.put(key, MEMBER.pack(member_until, capacity), db=self.groups)
            if presence is not None:
                txn.put(key, presence, db=self.presence)
            self._new_version(txn, prefix)

    def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*, and its presence."""
        prefix = group.encode() + b"\0"
        key = prefix + channel.encode()
        with self._write() as txn:
            txn.delete(key, db=self.presence)
            if txn.delete(key, db=self.groups):
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
                    if len(key) > len(prefix) and MEMBER.unpack(value)[0] > now:
                        members.append(key[len(prefix) :].decode())
        return members
