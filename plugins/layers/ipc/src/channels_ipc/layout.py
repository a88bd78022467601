"""The on-disk layout of the IPC layer's store, format ``channels-ipc/3``: its keys and values.

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
``p`` (presence)
    ``group + b"\\0" + channel`` (the member's key in ``g``) to the identity of the process
    that made it present (:mod:`.liveness`) and its packed info. Every key here has one in
    ``g``: whatever removes a membership removes its presence in the same transaction.
``h`` (history)
    for a group that keeps history, ``group + b"\\0"`` to its last offset and the highest
    offset dropped, and ``group + b"\\0" + offset`` (big-endian, so in offset order) to the
    time the message was kept and the message as sent, for every offset after the dropped
    one up to the last: trimming only ever drops the oldest.
``d`` (delayed messages)
    the messages kept until they are due (``asgi.delay``, :mod:`.delays`): the due time and
    a sequence number, big-endian (``DUE``, so in due order), to the time it first fell due,
    its channel's capacity and name length (``DELAYED``), its channel's name and the packed
    message. Added to format ``channels-ipc/3`` without changing it: a store made before
    gains the database empty when it is opened.

The main database holds the format marker, the sequence counter, and the store's history
epoch (made with the store, and again by a flush).
"""

from __future__ import annotations

import struct

import lmdb

FORMAT_KEY = b"channels-ipc"
FORMAT = b"channels-ipc/3"
SEQ_KEY = b"seq"
EPOCH_KEY = b"epoch"
# The modules that use these Structs assign them (``SEQ = layout.SEQ``) rather than import them
# by name: CPython compiles ``NAME.pack(...)`` on a name bound by an import as an attribute load
# and a call (it expects a module there), slower on the per-message path than a method call.
SEQ = struct.Struct(">Q")
EXPIRES = struct.Struct("<d")
COUNT = struct.Struct("<Q")
MEMBER = struct.Struct("<dQ")
NAMES = struct.Struct("<I")
# The time a history entry was kept; a group's last offset and highest dropped offset.
KEPT_AT = struct.Struct("<d")
HISTORY = struct.Struct("<QQ")
# A delayed message's key (due time, sequence) and the head of its value (first due time,
# capacity, channel name length).
DUE = struct.Struct(">dQ")
DELAYED = struct.Struct("<dQI")
ZERO = COUNT.pack(0)
# Per owner: the messages in its queue, and whether its channels are counted one by one.
OWNED = struct.Struct("<Q?")
TOTAL = b"*"
OWNER_KEY = b"!"
DATABASES = (b"m", b"n", b"g", b"f", b"w", b"p", b"h", b"d")


def queue_key(name: bytes) -> bytes:
    """The key prefix of the queue holding the messages of the channel named *name*."""
    bang = name.find(b"!")
    if bang < 0:
        return b"c" + name + b"\0"
    return b"o" + name[: bang + 1] + b"\0"


def wake_key(name: bytes) -> bytes:
    """What a receiver of channel *name* registers to be rung for: the channel, or its owner."""
    bang = name.find(b"!")
    return name if bang < 0 else name[: bang + 1]


def parse_message(key: bytes, value: bytes) -> list[bytes]:
    """The channel names of the stored message *key*: *value*; ValueError when malformed."""
    queue_end = key.find(b"\0") + 1
    if not queue_end or len(key) != queue_end + SEQ.size or key[:1] not in (b"c", b"o"):
        raise ValueError(f"malformed message key {key!r}")
    queue = key[:queue_end]
    try:
        names, end = names_of(queue, value)
    except (IndexError, struct.error) as error:
        raise ValueError(f"message {key!r} is truncated") from error
    if end > len(value) or not names:
        raise ValueError(f"message {key!r} is truncated")
    for name in names:
        if queue_key(name) != queue:
            raise ValueError(f"message {key!r} names channel {name!r} of another queue")
    return names


def names_of(queue: bytes, value: bytes) -> tuple[list[bytes], int]:
    """The channel names a stored message *value* of *queue* is for, and where its data starts."""
    if queue[:1] == b"c":
        return [queue[1:-1]], EXPIRES.size
    start = EXPIRES.size + NAMES.size
    end = start + NAMES.unpack_from(value, EXPIRES.size)[0]
    return value[start:end].split(b"\n"), end


def next_seq(txn: lmdb.Transaction, count: int) -> int:
    """Reserve *count* sequence numbers; the first of them."""
    stored = txn.get(SEQ_KEY)
    first = SEQ.unpack(stored)[0] if stored else 1
    txn.put(SEQ_KEY, SEQ.pack(first + count))
    return first


def increment(txn: lmdb.Transaction, db: lmdb._Database, key: bytes) -> None:
    counted = txn.get(key, db=db)
    txn.put(key, COUNT.pack((COUNT.unpack(counted)[0] if counted else 0) + 1), db=db)
