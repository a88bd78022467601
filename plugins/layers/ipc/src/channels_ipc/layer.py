"""The IPC channel layer: channels and groups shared by the processes of one machine.

Every process opens the same directory: an LMDB store there holds the messages, groups,
counts and wake-up registrations (:mod:`.store`), and each receiving process owns a FIFO there
that senders ring (:mod:`.wake`). There is no server: a send is one store transaction plus,
when somebody waits on the channel, a one-line write into the waiting process's FIFO.

Receiving from a normal channel takes exactly one message, in the receiving coroutine itself:
a waiting receive is only *woken* (its future resolved with no value) and then takes the
message in its own transaction. So a cancelled receive holds no message, and nothing is ever
taken ahead of a receiver: closing the layer loses no message of a shared channel. Messages of
this process's own channels (``prefix!…``) are taken in batches into local buffers, for fan-out
speed; those left when the layer closes are dropped, as nobody else could receive them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
import tempfile
import time
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from channels_core.exceptions import (
    ChannelFull,
    ImproperlyConfigured,
    LayerClosed,
)
from channels_core.layers import BaseChannelLayer, LayerStats, hand_to_waiter
from channels_core.names import (
    check_channel_name,
    check_group_name,
    check_process_prefix,
    process_prefix,
)
from channels_core.serialization import pack, unpack

from .store import open_store
from .wake import Doorbell, Ringer, sweep

logger = logging.getLogger(__name__)

DEFAULT_MAP_SIZE = 1 << 30
# How many deliveries (messages times the channels each is for) of this process's own channels
# one transaction takes, at most or a few more.
_OWNER_BATCH = 10_000
_NAME_RE = re.compile(r"[a-zA-Z0-9._-]+\Z")


def default_path(name: str | None = None) -> Path:
    """The directory used when no ``path`` is given: one per user and per *name*.

    *name* defaults to ``DJANGO_SETTINGS_MODULE`` (so the processes of one project share it
    and two projects do not), or ``"default"`` outside Django.
    """
    if name is None:
        name = os.environ.get("DJANGO_SETTINGS_MODULE") or "default"
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ImproperlyConfigured(
            f"IPC layer option 'name' is {name!r}; it must be a non-empty string of "
            "[a-zA-Z0-9._-], such as 'mysite'."
        )
    return Path(tempfile.gettempdir()) / f"channels-ipc-{os.getuid()}" / name


def _directory(path: Any, name: str | None) -> Path:
    """The layer's directory, created if missing; ImproperlyConfigured when unusable."""
    if path is None:
        directory = default_path(name)
    elif name is not None:
        raise ImproperlyConfigured(
            f"IPC layer options 'path' ({path!r}) and 'name' ({name!r}) are both set; 'name' "
            "only picks the default path: give one of them."
        )
    elif isinstance(path, (str, os.PathLike)) and str(path):
        directory = Path(path).expanduser()
    else:
        raise ImproperlyConfigured(
            f"IPC layer option 'path' is {path!r}; it must be a directory path such as "
            "'/run/mysite/channels'."
        )
    if directory.exists() and not directory.is_dir():
        raise ImproperlyConfigured(
            f"IPC layer option 'path' is {str(directory)!r}, which is a file: the layer needs "
            "a directory of its own there; point 'path' at a directory."
        )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ImproperlyConfigured(
            f"The IPC layer cannot create its directory {str(directory)!r} ({error.strerror}): "
            "point 'path' at a directory this user may write."
        ) from error
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ImproperlyConfigured(
            f"The IPC layer's directory {str(directory)!r} is not writable by this user: "
            "fix its permissions or point 'path' at a directory this user may write."
        )
    return directory


# Layers open in this process: a forked child must not touch its parent's store handles
# (LMDB forbids it), so the fork marks them closed in the child.
_open_layers: weakref.WeakSet[IPCChannelLayer] = weakref.WeakSet()


def _close_after_fork() -> None:
    for layer in list(_open_layers):
        layer._forked = True
        layer._closed = True
    _open_layers.clear()


os.register_at_fork(after_in_child=_close_after_fork)


# A message of one of this process's channels: (channel, expires_at, packed message).
Entry = tuple[str, float, bytes]


class IPCChannelLayer(BaseChannelLayer):
    """The ``ipc`` layer: channels and groups shared by processes on one machine (Linux).

    Extra options: ``path``, the directory of the shared store (created if missing; every
    process that should share channels uses the same one), or ``name``, which picks
    ``<tempdir>/channels-ipc-<uid>/<name>`` when ``path`` is not given (default: the
    ``DJANGO_SETTINGS_MODULE``); and ``map_size``, the most bytes the store may grow to
    (default 1 GiB, reserved as address space, not memory or disk).

    Sends work from any thread; receives run on one event loop at a time.
    """

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
        self.path = _directory(path, name)
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
        entry = await self._receive_owned(prefix, None)
        return entry[0], unpack(entry[2])

    async def _receive_owned(self, owner: str, channel: str | None) -> Entry:
        """The next message of *channel* (or of any channel under *owner* when None)."""
        loop = self._bind()
        while True:
            self._check_open()
            found = self._pop_buffered(owner, channel)
            if found is not None:
                return found
            # While this process is rung for *owner*, everything stored for it since the last
            # fetch has rung the doorbell, whose reader fetches it: there is nothing to take.
            if owner in self._registered or not self._fetch_owner(owner, register=True):
                break
        if channel is None:
            waiters, key = self._prefix_waiters, owner
        else:
            waiters, key = self._owned_waiters, channel
        waiter = loop.create_future()
        queue = waiters.get(key)
        if queue is None:
            queue = waiters[key] = deque()
        queue.append(waiter)
        interest = self._owner_interest
        interest[owner] = interest.get(owner, 0) + 1
        try:
            entry = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and not self._closed:
                # Handed its message, then cancelled before it could return it: put it back.
                channel, expires_at, data = waiter.result()
                self._deliver(owner, (channel,), expires_at, data, last=False)
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
                if not queue and waiters.get(key) is queue:
                    del waiters[key]
            raise
        finally:
            remaining = interest.get(owner, 0) - 1
            if remaining > 0:
                interest[owner] = remaining
            else:
                interest.pop(owner, None)
        return entry

    def _fetch_owner(self, owner: str, register: bool) -> bool:
        """Take *owner*'s stored messages: to its waiting receives, or into the buffers.

        False when there were none (and, with *register*, this process is now rung for them).
        """
        fetched = False
        while True:
            with self._lock:
                self._check_open()
                token = self._token_for(owner) if register else None
                taken = self._store.take_owner(owner, time.time(), _OWNER_BATCH, token)
            if not taken:
                if token is not None:
                    self._registered.add(owner)
                return fetched
            fetched = True
            deliveries = 0
            for channels, expires_at, data in taken:
                deliveries += len(channels)
                self._deliver(owner, channels, expires_at, data)
            if deliveries < _OWNER_BATCH:
                return True

    def _deliver(
        self,
        owner: str,
        channels: Iterable[str],
        expires_at: float,
        data: bytes,
        last: bool = True,
    ) -> None:
        """Hand a message for *channels* of *owner* to a receive waiting on each, or buffer it.

        Buffered behind the channel's other messages, or before them when *last* is false (a
        message given back by a cancelled receive).
        """
        buffers, owned_waiters, prefix_waiters = (
            self._buffers,
            self._owned_waiters,
            self._prefix_waiters,
        )
        for channel in channels:
            entry = (channel, expires_at, data)
            if channel not in buffers and (
                (channel in owned_waiters and hand_to_waiter(owned_waiters, channel, entry))
                or (owner in prefix_waiters and hand_to_waiter(prefix_waiters, owner, entry))
            ):
                continue
            self._buffer(owner, entry, last)

    def _buffer(self, owner: str, entry: Entry, last: bool) -> None:
        """Keep *entry* for a later receive: after its channel's others, or first if not *last*."""
        channel = entry[0]
        ready = self._ready.get(owner)
        if ready is None:
            ready = self._ready[owner] = OrderedDict()
        buffer = self._buffers.get(channel)
        if buffer is None:
            buffer = self._buffers[channel] = deque()
        ready[channel] = None
        if last:
            buffer.append(entry)
        else:
            buffer.appendleft(entry)
            ready.move_to_end(channel, last=False)

    def _pop_buffered(self, owner: str, channel: str | None) -> Entry | None:
        """The next unexpired buffered message of *channel* (or of any under *owner*)."""
        ready = self._ready.get(owner)
        if not ready:
            return None
        if channel is not None:
            return self._pop_buffer(channel, ready)
        while ready:
            channel = next(iter(ready))
            entry = self._pop_buffer(channel, ready)
            if entry is not None:
                # Round robin: a channel that still holds messages goes to the back, so one
                # busy connection cannot starve the others.
                if channel in ready:
                    ready.move_to_end(channel)
                return entry
        return None

    def _pop_buffer(self, channel: str, ready: OrderedDict[str, None]) -> Entry | None:
        buffer = self._buffers.get(channel)
        now = time.time()
        while buffer:
            entry = buffer.popleft()
            if not buffer:
                del self._buffers[channel]
                del ready[channel]
            if entry[1] > now:
                return entry
        return None

    def _token_for(self, key: str) -> bytes | None:
        """This process's token when *key* is not yet registered to ring it, else None."""
        if key in self._registered:
            return None
        assert self._doorbell is not None
        return self._doorbell.token

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop, which reads this layer's doorbell (set up on first use)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return loop
        self._check_open()
        if self._loop is not None and not self._loop.is_closed():
            if self._loop.is_running():
                raise RuntimeError(
                    "This IPC layer already receives on another running event loop; a layer "
                    "receives on one loop at a time: build one layer per event loop."
                )
            self._loop.remove_reader(self._doorbell.fd)
        # Receives left waiting on a loop that stopped will never run again.
        for waiters in (self._waiters, self._owned_waiters, self._prefix_waiters):
            waiters.clear()
        self._owner_interest.clear()
        if self._doorbell is None:
            self._doorbell = Doorbell(self._wake_directory)
        loop.add_reader(self._doorbell.fd, self._on_doorbell)
        self._loop = loop
        return loop

    async def _wait(self, channel: str, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until normal *channel* may have a message (or the layer closes)."""
        waiter = loop.create_future()
        queue = self._waiters.get(channel)
        if queue is None:
            queue = self._waiters[channel] = deque()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Woken, then cancelled before it could look: pass the wake-up on.
                self._wake(channel, 1)
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise
        finally:
            if not queue and self._waiters.get(channel) is queue:
                del self._waiters[channel]

    def _wake(self, channel: str, count: int) -> None:
        """Wake up to *count* receives waiting on normal *channel*."""
        queue = self._waiters.get(channel)
        while queue and count:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def _on_doorbell(self) -> None:
        """Wake the receives whose keys were rung; forget keys nobody waits on any more."""
        if self._closed:
            return
        rung = self._doorbell.read()
        if rung is None:
            # The FIFO overflowed and lines may be lost: every waiting key gets looked at.
            rung = Counter({*self._registered, *self._waiters, *self._owner_interest})
        stale = []
        for key, count in rung.items():
            if key.endswith("!"):
                if key in self._owner_interest:
                    self._fetch_owner(key, register=False)
                else:
                    stale.append(key)
            elif key in self._waiters:
                self._wake(key, count)
            else:
                stale.append(key)
        stale = [key for key in stale if key in self._registered]
        if stale:
            self._registered.difference_update(stale)
            token = self._doorbell.token
            with self._lock:
                self._check_open()
                self._store.unregister((key, token) for key in stale)

    # Groups -----------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        """Add *channel* to *group*, or renew its membership."""
        check_group_name(group)
        check_channel_name(channel)
        with self._lock:
            self._check_open()
            member_until = time.time() + self.group_expiry
            self._store.group_add(group, channel, member_until, self.capacity_for(channel))

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; nothing happens when it is not a member."""
        check_group_name(group)
        check_channel_name(channel)
        with self._lock:
            self._check_open()
            self._store.group_discard(group, channel)

    async def group_send(self, group: str, message: dict) -> None:
        """Send *message* to every member of *group*; full members are skipped and counted."""
        check_group_name(group)
        data = pack(message, self.max_message_size)
        with self._lock:
            self._check_open()
            now = time.time()
            rings, full = self._store.group_send(group, data, now + self.expiry, now)
            if rings:
                self._ring(rings)
        if full:
            logger.debug("Group send to %r skipped %d full members.", group, full)

    async def group_members(self, group: str) -> list[str]:
        """The channels of *group* whose membership has not expired."""
        check_group_name(group)
        with self._lock:
            self._check_open()
            return self._store.group_members(group, time.time())

    # Lifecycle and statistics -----------------------------------------------------------

    async def flush(self) -> None:
        """Drop every message and group of the store, and this process's buffers."""
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

    def _detach(self, doorbell: Doorbell | None) -> None:
        """On the receiving loop: stop reading the doorbell and fail the waiting receives."""
        if doorbell is not None:
            self._loop.remove_reader(doorbell.fd)
            doorbell.close()
        for waiters in (self._waiters, self._owned_waiters, self._prefix_waiters):
            for queue in waiters.values():
                for waiter in queue:
                    if not waiter.done():
                        waiter.set_exception(self._closed_error())
            waiters.clear()

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
