"""Reading the store whole: statistics of the pending messages, and consistency checks."""

from __future__ import annotations

import lmdb

from . import layout
from .environment import Environment
from .layout import OWNER_KEY, TOTAL, names_of, parse_message, queue_key

# Assigned, not imported by name, to keep their calls method calls: see layout.py.
COUNT, EXPIRES, HISTORY, OWNED, SEQ = (
    layout.COUNT,
    layout.EXPIRES,
    layout.HISTORY,
    layout.OWNED,
    layout.SEQ,
)


class Statistics(Environment):
    """The store's read-only transactions over every queue and count."""

    def stats(self, channel: str | None, now: float) -> tuple[int, float | None, int]:
        """``(pending, earliest expiry, full count)`` of *channel*, or of every channel."""
        pending = 0
        earliest = None
        if channel is None:
            scan, name, full_key = (b"c", b"o"), None, TOTAL
        else:
            name = full_key = channel.encode()
            scan = (queue_key(name),)
        with self.env.begin() as txn:
            cursor = txn.cursor(self.messages)
            for queue in scan:
                found = cursor.set_range(queue)
                while found:
                    key, value = cursor.item()
                    if not key.startswith(queue):
                        break
                    found = cursor.next()
                    expires_at = EXPIRES.unpack_from(value)[0]
                    if expires_at <= now:
                        continue
                    names = names_of(key[: key.index(b"\0") + 1], value)[0]
                    count = len(names) if name is None else names.count(name)
                    if count:
                        pending += count
                        if earliest is None or expires_at < earliest:
                            earliest = expires_at
            counted = txn.get(full_key, db=self.full)
        return pending, earliest, COUNT.unpack(counted)[0] if counted else 0

    def verify(self) -> list[str]:
        """The inconsistencies found in the store, as sentences (empty when it is sound).

        Checks that every message is well formed and sits in its channel's queue, that each
        owner's count is its number of messages, that each channel counted one by one has
        its number of messages as count (and the others no count), that only members are
        present, and that each group's history keeps every offset after its highest dropped
        one up to its last, and no other.
        """
        problems = []
        found: dict[bytes, int] = {}
        queued: dict[bytes, int] = {}
        with self.env.begin() as txn:
            for key, value in txn.cursor(self.messages):
                try:
                    names = parse_message(key, value)
                except ValueError as error:
                    problems.append(f"Bad message: {error}.")
                    continue
                for name in names:
                    found[name] = found.get(name, 0) + 1
                if key[:1] == b"o":
                    owner = key[1 : key.index(b"\0")]
                    queued[owner] = queued.get(owner, 0) + 1
            problems.extend(self._verify_presence_and_history(txn))
            counts, owners = {}, {}
            for key, value in txn.cursor(self.counts):
                if key.startswith(OWNER_KEY):
                    owners[key[len(OWNER_KEY) :]] = OWNED.unpack(value)
                else:
                    counts[key] = COUNT.unpack(value)[0]
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

    def _verify_presence_and_history(self, txn: lmdb.Transaction) -> list[str]:
        problems = []
        for key in txn.cursor(self.presence).iternext(values=False):
            if txn.get(key, db=self.groups) is None:
                group, _, channel = key.decode().partition("\0")
                problems.append(f"Channel {channel!r} is present in {group!r} but not a member.")
        kept: dict[bytes, list[int]] = {}
        states: dict[bytes, tuple[int, int]] = {}
        for key, value in txn.cursor(self.history):
            group, _, offset = key.partition(b"\0")
            if offset:
                kept.setdefault(group, []).append(SEQ.unpack(offset)[0])
            else:
                states[group] = HISTORY.unpack(value)
        for group in sorted(set(kept) | set(states)):
            last, dropped = states.get(group, (0, 0))
            offsets = kept.get(group, [])
            if offsets != list(range(dropped + 1, last + 1)):
                problems.append(
                    f"Group {group.decode()!r} keeps the offsets {offsets[:3]}...{offsets[-3:]} "
                    f"({len(offsets)}), not those after {dropped} up to {last}."
                )
        return problems
