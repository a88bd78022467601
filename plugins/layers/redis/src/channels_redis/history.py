"""Group history in Redis: what a group send keeps, and what ``group_history`` reads back.

A group whose name matches the layer's ``history`` option keeps its messages in two keys that
share the group's hash tag (see :mod:`channels_redis.keys`): ``gh:{<group>}``, a hash of the
group's ``epoch``, the ``last`` offset given and the highest offset ``dropped``, and
``gl:{<group>}``, the list of kept messages. The group send's script (the same call that
delivers to the members, see :mod:`channels_redis.scripts`) makes the epoch when the group
has none, from a fresh one the layer passes (``HSETNX``), takes the next offset (``HINCRBY``),
appends the packed message (encrypted, when the layer encrypts) and trims the list by size and
by age. A Redis that lost its data (restarted without persistence, flushed) so makes a new
epoch at the group's next send, and a position from before is known to be of another one.

Members get the message after its position, ``@<epoch>:<offset>|<packed message>``: the
position stays outside the packed (maybe encrypted) message, which only the script can number,
and the receiving layer adds it under the key ``"position"`` (:func:`split_position`).
"""

from __future__ import annotations

import logging
import math

from channels_core.history import History, Position, Retention, new_epoch

from .crypto import MessageCipher, read_packed

logger = logging.getLogger(__name__)


def keep_args(retention: Retention, group_expiry: float) -> list:
    """The script arguments that keep a group send in a history of *retention*: a fresh
    epoch, size and ttl in milliseconds (0: no bound), and how long the history's keys live
    after the group's last send: its membership's ``group_expiry``, or the ttl if longer."""
    lifetime_ms = math.ceil(max(group_expiry, retention.ttl or 0) * 1000)
    return [new_epoch(), retention.size or 0, retention.ttl_ms or 0, lifetime_ms]


def positioned(epoch: bytes, offset: int, data: bytes) -> bytes:
    """*data* (a packed message) as the members of a group with history get it."""
    return b"@%s:%d|%s" % (epoch, offset, data)


def split_position(data: bytes) -> tuple[list, bytes]:
    """The ``[epoch, offset]`` position and the packed message of what :func:`positioned`
    made; ValueError when *data* is not that."""
    head, _, data = data.partition(b"|")
    epoch, _, offset = head[1:].partition(b":")
    return [epoch.decode("ascii"), int(offset)], data


def read_history(reply: list, since: Position | None, cipher: MessageCipher | None) -> History:
    """The :class:`History` of a ``GROUP_HISTORY`` script's *reply* after *since*."""
    if not reply:
        # No history state: nothing was kept, or it was lost (a position says so).
        return History(complete=since is None)
    epoch, last, dropped = reply[0].decode(), reply[1], reply[2]
    if since is None:
        after, complete = 0, dropped == 0
    elif since.epoch != epoch:
        after, complete = 0, False
    else:
        after, complete = since.offset, since.offset >= dropped
    messages, unreadable = [], 0
    for entry in reply[3:]:
        offset_text, _, rest = entry.partition(b"|")
        offset = int(offset_text)
        if offset <= after:
            continue
        content = read_packed(rest.partition(b"|")[2], cipher)
        if content is None:
            unreadable += 1
        else:
            messages.append((Position(epoch, offset), content))
    if unreadable:
        # Missing from what is returned, so the history is not complete.
        complete = False
        logger.error(
            "%d messages kept in a group's history (epoch %s) could not be read with this "
            "layer's symmetric_encryption_keys, so they are left out: every process sharing "
            "the prefix needs the same keys.",
            unreadable,
            epoch,
        )
    return History(messages, complete, Position(epoch, last) if last else None)
