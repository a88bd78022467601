"""The IPC channel layer: channels and groups shared by the processes of one machine.

Every process opens the same directory (:mod:`.directory`): an LMDB store there holds the
messages, groups, counts and wake-up registrations (:mod:`.store`), and each receiving process
owns a FIFO there that senders ring (:mod:`.wake`). There is no server: a send is one store
transaction plus, when somebody waits on the channel, a one-line write into the waiting
process's FIFO.

Receiving from a normal channel takes exactly one message, in the receiving coroutine itself:
a waiting receive is only *woken* (its future resolved with no value) and then takes the
message in its own transaction. So a cancelled receive holds no message, and nothing is ever
taken ahead of a receiver: closing the layer loses no message of a shared channel. Messages of
this process's own channels (``prefix!…``) are taken in batches into local buffers, for fan-out
speed; those left when the layer closes are dropped, as nobody else could receive them.

Groups may keep history (the ``history`` option): a group send keeps the message and gives
it its position in the same transaction that stores it for the members. Present members are
stored with the identity of the process that added them, and end as soon as it dies
(:mod:`.liveness`): on one machine, the kernel knows, so no heartbeat and no timeout.

This module holds the layer's public methods. Receiving is spread over :mod:`.waiters` (the
waiting receives, and the doorbell that wakes them) and :mod:`.owned` (this process's own
channels, with their buffers); delayed messages (``asgi.delay``) are in :mod:`.delays`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections import OrderedDict, deque
from typing import Any

from channels_core.exceptions import (
    ChannelFull,
    ImproperlyConfigured,
    LayerClosed,
)
from channels_core.history import History, Position, check_presence_info
from channels_core.layers import BaseChannelLayer, LayerStats
from channels_core.names import (
    check_channel_name,
    check_group_name,
    check_process_prefix,
    process_prefix,
)
from channels_core.serialization import pack, unpack

from .delays import IPCDelays
from .directory import default_path, layer_directory
from .liveness import this_process
from .owned import Entry, OwnedChannels
from .store import open_store
from .waiters import Waiters
from .wake import Doorbell, Ringer, sweep

__all__ = ["DEFAULT_MAP_SIZE", "IPCChannelLayer", "default_path"]

logger = logging.getLogger(__name__)

DEFAULT_MAP_SIZE = 1 << 30


# Layers open in this process: a forked child must not touch its parent's store handles
# (LMDB forbids it), so the fork marks them closed in the child.
_open_layers: weakref.WeakSet[IPCChannelLayer] = weakref.WeakSet()


def _close_after_fork() -> None:
    for layer in list(_open_layers):
        layer._forked = True
        layer._closed = True
    _open_layers.clear()


os.register_at_fork(after_in_child=_close_after_fork)


class IPCChannelLayer(IPCDelays, OwnedChannels, Waiters, BaseChannelLayer):
    """The ``ipc`` layer: channels and groups shared by processes on one machine (Linux).

    Extra options: ``path``, the directory of the shared store (created if missing; every
    process that should share channels uses the same one), or ``name``, which picks
    ``<tempdir>/channels-ipc-<uid>/<name>`` when ``path`` is not given (default: the
    ``DJANGO_SETTINGS_MODULE``); and ``map_size``, the most bytes the store may grow to
    (default 1 GiB, reserved as address space, not memory or disk).

    Presence and group history live in the store with the messages: a present member ends
    when the process that added it dies (at once: ``presence_timeout`` is an upper bound this
    layer does not need), and the history epoch is made with the store, so a deleted store
    directory loses the history, and positions from before it are told apart.

    Sends work from any thread; receives run on one event loop at a time.
    """

    extensions = (*BaseChannelLayer.extensions, "presence", "history", "delay")
    config_keys = ("path", "name", "map_size")

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        name: str | None = None,
        map_size: int = DEFAULT_MAP_SIZE,
        **config: Any,
    ) -> None:
        super().__init__(**config)
        if not sys.platform.startswith("linux"):
            raise ImproperlyConfigured(
                f"The IPC layer runs on Linux only, not on {sys.platform!r}: use the 'redis' "
                "layer here."
            )
        map_size = int(self._positive("map_size", map_size))
        self.path = layer_directory(path, name)
        self._store = open_store(self.path, map_size)
        self._wake_directory = self.path / "wake"
        self._ringer = Ringer(self._wake_directory)
        self._lock = self._store.lock
        self._closed = False
        self._pid = os.getpid()
        self._forked = False
        try:
            with self._lock:
                self._forget_dead_processes()
        except BaseException:
            self._store.release()
            raise
        _open_layers.add(self)
        # Made on the first receive, with the loop that reads it.
        self._doorbell: Doorbell | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._registered: set[str] = set()
        # Receives waiting on a normal channel: futures resolved with None to wake them (the
        # woken receive takes its message itself).
        self._waiters: dict[str, deque[asyncio.Future]] = {}
        # Receives waiting on this process's channels, per channel and (receive_prefix) per
        # owner prefix: futures resolved with the message, handed to them.
        self._owned_waiters: dict[str, deque[asyncio.Future]] = {}
        self._prefix_waiters: dict[str, deque[asyncio.Future]] = {}
        # How many receives wait on each owner prefix, through either kind of waiter (one
        # handed its message counts until it resumes).
        self._owner_interest: dict[str, int] = {}
        # Taken messages of this process's channels, per channel, and per owner the channels
        # holding some, in arrival order.
        self._buffers: dict[str, deque[Entry]] = {}
        self._ready: dict[str, OrderedDict[str, None]] = {}

    def _forget_dead_processes(self) -> None:
        """Remove the doorbells and registrations left by processes that were killed."""
        # Registrations first: a process registers only once its doorbell is in place, so
        # one registered before this read and gone from the sweep below is dead.
        registered = self._store.registered_tokens()
        dead = registered - sweep(self._wake_directory)
        if dead:
            logger.debug("Forgetting the wake-ups of %d dead processes.", len(dead))
            self._store.forget_tokens(dead)

    # Sending ----------------------------------------------------------------------------

    async def send(self, channel: str, message: dict) -> None:
        """Put *message* on *channel*; see :meth:`BaseChannelLayer.send`."""
        check_channel_name(channel)
        data = pack(message, self.max_message_size)
        capacity = self.capacity_for(channel)
        with self._lock:
            self._check_open()
            now = time.time()
            tokens = self._store.send(channel, data, capacity, now + self.expiry, now)
            if tokens is None:
                raise ChannelFull(
                    f"Channel {channel!r} holds {capacity} messages, its capacity: receive "
                    "from it faster, retry later, or raise its capacity (capacity or "
                    "channel_capacity)."
                )
            if tokens:
                key = process_prefix(channel) if "!" in channel else channel
                self._ring({token: (key,) for token in tokens})

    def _ring(self, rings: dict[bytes, Any]) -> None:
        """Ring each token's doorbell with its keys; forget the tokens of dead processes."""
        gone = [
            (key, token)
            for token, keys in rings.items()
            if not self._ringer.ring(token, keys)
            for key in keys
        ]
        if gone:
            self._store.unregister(gone)

    # Receiving --------------------------------------------------------------------------

    async def receive(self, channel: str) -> dict:
        """Wait for the next message on *channel*; see :meth:`BaseChannelLayer.receive`."""
        check_channel_name(channel)
        if "!" in channel:
            self.check_receivable(channel)
            entry = await self._receive_owned(channel[: channel.index("!") + 1], channel)
            return unpack(entry[2])
        loop = self._bind()
        while True:
            with self._lock:
                self._check_open()
                token = self._token_for(channel)
                data, more = self._store.take(channel, time.time(), token)
            if data is not None:
                if more:
                    # Another receive of this process may be waiting for what is left.
                    self._wake(channel, 1)
                return unpack(data)
            if token is not None:
                self._registered.add(channel)
            await self._wait(channel, loop)

    async def receive_prefix(self, prefix: str) -> tuple[str, dict]:
        """Wait for a message on any channel under *prefix* (``specific.XXXX!``)."""
        check_process_prefix(prefix)
        self.check_receivable(prefix)
        entry = await self._receive_owned(prefix, None)
        return entry[0], unpack(entry[2])

    # Groups -----------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str, presence: dict | None = None) -> None:
        """Add *channel* to *group*, or renew its membership; with *presence*, also make it
        present with that info, for as long as this process lives."""
        check_group_name(group)
        check_channel_name(channel)
        if presence is not None:
            info = pack(check_presence_info(presence), self.max_message_size)
            presence = this_process() + info
        with self._lock:
            self._check_open()
            member_until = time.time() + self.group_expiry
            capacity = self.capacity_for(channel)
            self._store.group_add(group, channel, member_until, capacity, presence)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; nothing happens when it is not a member."""
        check_group_name(group)
        check_channel_name(channel)
        with self._lock:
            self._check_open()
            self._store.group_discard(group, channel)

    async def group_send(self, group: str, message: dict) -> Position | None:
        """Send *message* to every member of *group*; full members are skipped and counted.
        A group that keeps history keeps it too, and its position is returned."""
        check_group_name(group)
        data = pack(message, self.max_message_size)
        retention = self.history.for_group(group)
        keeping = None
        if retention is not None:

            def with_position(position: tuple[str, int]) -> bytes:
                # Members get the message with its position; history keeps it without.
                return pack({**message, "position": list(position)}, self.max_message_size)

            keeping = (retention, with_position)
        with self._lock:
            self._check_open()
            now = time.time()
            rings, full, position = self._store.group_send(
                group, data, now + self.expiry, now, keeping
            )
            if rings:
                self._ring(rings)
        if full:
            logger.debug("Group send to %r skipped %d full members.", group, full)
        return None if position is None else Position(*position)

    async def group_presence(self, group: str) -> dict[str, dict]:
        """The present members of *group* (their membership not expired, their process
        alive): ``{channel: info}``."""
        check_group_name(group)
        with self._lock:
            self._check_open()
            present = self._store.group_presence(group, time.time())
        return {channel: unpack(info) for channel, info in present.items()}

    async def group_history(self, group: str, since: Position | None = None) -> History:
        """What *group* kept after *since*; see :meth:`BaseChannelLayer.group_history`."""
        check_group_name(group)
        retention = self.retention(group)
        since = Position.of(since)
        with self._lock:
            self._check_open()
            epoch, last, dropped, kept = self._store.group_history(
                group, retention, since, time.time()
            )
        if since is None:
            complete = dropped == 0
        elif since.epoch != epoch:
            complete = False
        else:
            complete = since.offset >= dropped
        messages = [(Position(epoch, offset), unpack(data)) for offset, data in kept]
        return History(messages, complete, Position(epoch, last) if last else None)

    async def group_members(self, group: str) -> list[str]:
        """The channels of *group* whose membership has not expired."""
        check_group_name(group)
        with self._lock:
            self._check_open()
            return self._store.group_members(group, time.time())

    # Lifecycle and statistics -----------------------------------------------------------

    async def flush(self) -> None:
        """Drop every message, group, presence and history of the store (a new history
        epoch), and this process's buffers."""
        with self._lock:
            self._check_open()
            self._store.flush()
            self._buffers.clear()
            self._ready.clear()

    async def close(self) -> None:
        """Close this process's use of the store; waiting receives raise LayerClosed.

        The store and its messages stay for the other processes. Nothing taken from a shared
        channel is held here, so closing loses none of those messages.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            _open_layers.discard(self)
            doorbell, registered = self._doorbell, list(self._registered)
            if doorbell is not None and registered:
                self._store.unregister((key, doorbell.token) for key in registered)
            self._store.release()
            self._ringer.close()
            self._buffers.clear()
            self._ready.clear()
        loop = self._loop
        if loop is None or loop.is_closed():
            if doorbell is not None:
                doorbell.close()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._detach(doorbell)
        else:
            loop.call_soon_threadsafe(self._detach, doorbell)

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _closed_error(self) -> LayerClosed:
        if self._forked:
            return LayerClosed(
                f"This IPC layer was opened by process {self._pid} and cannot be used in a "
                "child forked from it: build the layer in the process that uses it."
            )
        return LayerClosed("The channel layer is closed: build a new layer to go on.")

    async def stats(self, channel: str | None = None) -> LayerStats:
        """Messages pending, the oldest one's age and refused sends, of *channel* or all.

        Counts the messages in the store and in this process's buffers (not those another
        process has taken into its own buffers for its own channels).
        """
        if channel is not None:
            check_channel_name(channel)
        with self._lock:
            self._check_open()
            now = time.time()
            pending, earliest, full_count = self._store.stats(channel, now)
            for name, buffer in self._buffers.items():
                if channel is None or name == channel:
                    for _, expires_at, _ in buffer:
                        if expires_at > now:
                            pending += 1
                            if earliest is None or expires_at < earliest:
                                earliest = expires_at
        oldest_age = None
        if earliest is not None:
            oldest_age = max(0.0, now - (earliest - self.expiry))
        return LayerStats(pending=pending, oldest_age=oldest_age, full_count=full_count)
