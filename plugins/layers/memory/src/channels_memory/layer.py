"""The in-process channel layer: every channel and group in this process's memory.

A message is packed with msgpack once, at send (which validates it and isolates the sender
from the receiver), and unpacked by its one receiver. A receiver that waits gets a future in
the channel's waiter queue; a send to a channel with a waiter hands the packed message straight
to that future, so a send-receive pair costs a few dict and deque operations.

The layer serves one event loop, but a send may come from another thread running its own loop
(asgiref's ``async_to_sync`` from a plain thread does that). A lock guards the few lines that
touch shared state, and a waiter whose loop is not the running one is woken through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from typing import Any

from channels_core.exceptions import ChannelFull, LayerClosed
from channels_core.history import History, Position, check_presence_info, new_epoch
from channels_core.layers import BaseChannelLayer, LayerStats
from channels_core.names import check_channel_name, check_group_name, check_process_prefix
from channels_core.serialization import pack, unpack

from .delays import Delayed, MemoryDelays

logger = logging.getLogger(__name__)

# An entry is ``(channel, expires_at, packed_message)``: the same tuple sits in a channel's
# queue or is handed to a waiting receiver's future, so a cancelled receive can put it back.
Entry = tuple[str, float, bytes]

# Channel states left empty are forgotten in sweeps, once there are more of them than this
# (or than twice the number kept by the last sweep), so that reply channels of closed
# connections do not pile up while steady traffic does not allocate a state per message.
_SWEEP_FLOOR = 1024
# Per-channel counts of refused sends are kept for this many channels at most.
_FULL_COUNTS_LIMIT = 10_000


class _ChannelState:
    """The messages and waiting receivers of one channel."""

    __slots__ = ("capacity", "prefix", "prefix_waiters", "queue", "ready", "waiters")

    def __init__(
        self,
        capacity: int,
        prefix: str | None,
        prefix_waiters: deque | None,
        ready: OrderedDict | None,
    ) -> None:
        self.queue: deque[Entry] = deque()
        self.waiters: deque[asyncio.Future] = deque()
        self.capacity = capacity
        # For a process-specific channel: its prefix, the receive_prefix waiters of that
        # prefix, and the prefix's ordered set of channels holding messages.
        self.prefix = prefix
        self.prefix_waiters = prefix_waiters
        self.ready = ready


class _History:
    """One group's kept messages: ``(offset, kept_at, packed)``, oldest first; the last offset
    given, and the highest offset dropped (by size or age)."""

    __slots__ = ("dropped", "entries", "last")

    def __init__(self) -> None:
        self.entries: deque[tuple[int, float, bytes]] = deque()
        self.last = 0
        self.dropped = 0

    def keep(self, data: bytes, retention: Any) -> int:
        """Keep *data* as the next message; its offset."""
        self.last += 1
        self.entries.append((self.last, time.monotonic(), data))
        self.trim(retention)
        return self.last

    def trim(self, retention: Any) -> None:
        entries = self.entries
        if retention.size is not None:
            while len(entries) > retention.size:
                self.dropped = entries.popleft()[0]
        if retention.ttl is not None:
            oldest = time.monotonic() - retention.ttl
            while entries and entries[0][1] < oldest:
                self.dropped = entries.popleft()[0]


class InMemoryChannelLayer(MemoryDelays, BaseChannelLayer):
    """The ``memory`` layer: channels and groups in this process, for one event loop.

    Takes the common options of :class:`~channels_core.layers.BaseChannelLayer` and no
    others. Messages, groups, presence, history, delayed messages and statistics live only
    as long as the layer: its history epoch is made when it starts (and again on
    :meth:`flush`), and only a delay server in this process delivers its delayed messages.
    """

    extensions = (*BaseChannelLayer.extensions, "presence", "history", "delay")

    # Nothing outside this process sees it: worker mode on it reaches no worker.
    cross_process = False

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._lock = threading.Lock()
        self._closed = False
        self._channels: dict[str, _ChannelState] = {}
        self._prefix_waiters: dict[str, deque[asyncio.Future]] = {}
        self._prefix_ready: dict[str, OrderedDict[str, None]] = {}
        self._groups: dict[str, dict[str, float]] = {}
        self._full_count = 0
        self._full_counts: dict[str, int] = {}
        self._sweep_at = _SWEEP_FLOOR
        # group -> channel -> its presence info, packed (each reader gets its own copy).
        self._presence: dict[str, dict[str, bytes]] = {}
        self._epoch = new_epoch()
        self._histories: dict[str, _History] = {}
        # Delayed messages, a heap by due time (channels_memory.delays).
        self._delayed: list[Delayed] = []

    # Channels ---------------------------------------------------------------------------

    async def send(self, channel: str, message: dict) -> None:
        """Put *message* on *channel*; see :meth:`BaseChannelLayer.send`."""
        check_channel_name(channel)
        data = pack(message, self.max_message_size)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            entry = (channel, time.monotonic() + self.expiry, data)
            if not self._put(channel, entry, asyncio.get_running_loop()):
                capacity = self._channels[channel].capacity
                raise ChannelFull(
                    f"Channel {channel!r} holds {capacity} messages, its capacity: receive "
                    "from it faster, retry later, or raise its capacity (capacity or "
                    "channel_capacity)."
                )

    async def receive(self, channel: str) -> dict:
        """Wait for the next message on *channel*; see :meth:`BaseChannelLayer.receive`."""
        check_channel_name(channel)
        self.check_receivable(channel)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            state = self._channels.get(channel) or self._new_state(channel)
            if state.queue:
                entry = self._pop(channel, state)
                if entry is not None:
                    return unpack(entry[2])
            waiter = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
        entry = await self._wait(waiter, state.waiters)
        return unpack(entry[2])

    async def receive_prefix(self, prefix: str) -> tuple[str, dict]:
        """Wait for a message on any channel under *prefix* (``specific.XXXX!``)."""
        check_process_prefix(prefix)
        self.check_receivable(prefix)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            ready = self._prefix_ready.get(prefix)
            while ready:
                channel = next(iter(ready))
                state = self._channels[channel]
                entry = self._pop(channel, state)
                if entry is not None:
                    # Round robin: a channel that still holds messages goes to the back,
                    # so one busy connection cannot starve the others.
                    if state.queue:
                        ready.move_to_end(channel)
                    return channel, unpack(entry[2])
            waiters = self._prefix_waiters.get(prefix)
            if waiters is None:
                waiters = self._prefix_waiters[prefix] = deque()
            waiter = asyncio.get_running_loop().create_future()
            waiters.append(waiter)
        entry = await self._wait(waiter, waiters)
        return entry[0], unpack(entry[2])

    async def _wait(self, waiter: asyncio.Future, waiters: deque) -> Entry:
        """Await *waiter*; on cancellation, give back a message it was already handed."""
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._give_back(waiter.result(), waiter.get_loop())
                else:
                    # A send may already have taken it off the queue (and skipped it).
                    with contextlib.suppress(ValueError):
                        waiters.remove(waiter)
            raise

    # The lock is held by the callers of every method below.

    def _new_state(self, channel: str) -> _ChannelState:
        if len(self._channels) >= self._sweep_at:
            self._sweep()
        prefix = prefix_waiters = ready = None
        if "!" in channel:
            prefix = channel[: channel.index("!") + 1]
            prefix_waiters = self._prefix_waiters.get(prefix)
            if prefix_waiters is None:
                prefix_waiters = self._prefix_waiters[prefix] = deque()
            ready = self._prefix_ready.get(prefix)
            if ready is None:
                ready = self._prefix_ready[prefix] = OrderedDict()
        state = self._channels[channel] = _ChannelState(
            self.capacity_for(channel), prefix, prefix_waiters, ready
        )
        return state

    def _put(self, channel: str, entry: Entry, running: asyncio.AbstractEventLoop) -> bool:
        """Hand *entry* to a waiting receiver or queue it; False when the channel is full.

        *running* is the sender's event loop: a waiter on another loop is woken through it.
        """
        state = self._channels.get(channel) or self._new_state(channel)
        waiters = state.waiters
        while waiters:
            if self._hand_off(waiters.popleft(), entry, running):
                return True
        waiters = state.prefix_waiters
        while waiters:
            if self._hand_off(waiters.popleft(), entry, running):
                return True
        queue = state.queue
        if len(queue) >= state.capacity:
            self._drop_expired(channel, state, time.monotonic())
            if len(queue) >= state.capacity:
                self._full_count += 1
                if len(self._full_counts) >= _FULL_COUNTS_LIMIT:
                    self._full_counts.clear()
                self._full_counts[channel] = self._full_counts.get(channel, 0) + 1
                return False
        queue.append(entry)
        if state.ready is not None:
            state.ready[channel] = None
        return True

    def _hand_off(
        self, waiter: asyncio.Future, entry: Entry, running: asyncio.AbstractEventLoop
    ) -> bool:
        """Give *entry* to *waiter*; False when the waiter is gone (cancelled, loop closed)."""
        if waiter.done():
            return False
        loop = waiter.get_loop()
        if loop is running:
            waiter.set_result(entry)
            return True
        try:
            loop.call_soon_threadsafe(self._resolve, waiter, entry)
        except RuntimeError:
            return False  # its loop is closed: nobody waits there any more
        return True

    def _resolve(self, waiter: asyncio.Future, entry: Entry) -> None:
        """On *waiter*'s own loop: deliver *entry*, or give it back if the waiter left."""
        with self._lock:
            if waiter.done():
                self._give_back(entry, waiter.get_loop())
            else:
                waiter.set_result(entry)

    def _give_back(self, entry: Entry, running: asyncio.AbstractEventLoop) -> None:
        """Return a handed-off *entry* to the front of its channel (or to the next waiter)."""
        channel = entry[0]
        if self._closed:
            return
        state = self._channels.get(channel) or self._new_state(channel)
        for waiters in (state.waiters, state.prefix_waiters):
            while waiters:
                if self._hand_off(waiters.popleft(), entry, running):
                    return
        # It was accepted once, so it goes back even past capacity.
        state.queue.appendleft(entry)
        if state.ready is not None:
            state.ready[channel] = None
            state.ready.move_to_end(channel, last=False)

    def _pop(self, channel: str, state: _ChannelState) -> Entry | None:
        """The first unexpired entry of a non-empty *state*, or None when all expired."""
        queue = state.queue
        now = time.monotonic()
        entry = queue.popleft()
        while entry[1] <= now:
            if not queue:
                entry = None
                break
            entry = queue.popleft()
        if not queue and state.ready is not None:
            state.ready.pop(channel, None)
        return entry

    @staticmethod
    def _drop_expired(channel: str, state: _ChannelState, now: float) -> None:
        # Entries expire in queue order (each is stamped at send, and a given-back one is
        # older than those behind it), so expired ones are always at the front.
        queue = state.queue
        while queue and queue[0][1] <= now:
            queue.popleft()
        if not queue and state.ready is not None:
            state.ready.pop(channel, None)

    def _sweep(self) -> None:
        """Forget channel states with no message and no waiter, and unused prefixes."""
        now = time.monotonic()
        in_use = set()
        for channel, state in list(self._channels.items()):
            self._drop_expired(channel, state, now)
            if state.queue or state.waiters:
                in_use.add(state.prefix)
            else:
                del self._channels[channel]
        # A kept state refers to its prefix's structures, and a prefix with waiters is in
        # use by a receive_prefix: both stay, so new states find the same objects.
        for prefix in list(self._prefix_waiters):
            if prefix not in in_use and not self._prefix_waiters[prefix]:
                del self._prefix_waiters[prefix]
                self._prefix_ready.pop(prefix, None)
        self._sweep_at = max(_SWEEP_FLOOR, 2 * len(self._channels))
        logger.debug("Swept channel states; %d remain.", len(self._channels))

    # Groups -----------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str, presence: dict | None = None) -> None:
        """Add *channel* to *group*, or renew its membership; with *presence*, also make it
        present with that info."""
        check_group_name(group)
        check_channel_name(channel)
        info = None if presence is None else pack(check_presence_info(presence))
        with self._lock:
            if self._closed:
                raise self._closed_error()
            members = self._groups.get(group)
            if members is None:
                members = self._groups[group] = {}
            members[channel] = time.monotonic() + self.group_expiry
            if info is not None:
                self._presence.setdefault(group, {})[channel] = info

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; nothing happens when it is not a member."""
        check_group_name(group)
        check_channel_name(channel)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            members = self._groups.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._groups[group]
            self._forget_presence(group, (channel,))

    def _forget_presence(self, group: str, channels: Any) -> None:
        present = self._presence.get(group)
        if present is not None:
            for channel in channels:
                present.pop(channel, None)
            if not present:
                del self._presence[group]

    async def group_send(self, group: str, message: dict) -> Position | None:
        """Send *message* to every member of *group*; full members are skipped and counted.
        A group that keeps history keeps it too, and its position is returned."""
        check_group_name(group)
        data = pack(message, self.max_message_size)
        retention = self.history.for_group(group)
        position = None
        with self._lock:
            if self._closed:
                raise self._closed_error()
            if retention is not None:
                history = self._histories.get(group)
                if history is None:
                    history = self._histories[group] = _History()
                position = Position(self._epoch, history.keep(data, retention))
                # Members get the message with its position; history keeps it without.
                data = pack({**message, "position": list(position)}, self.max_message_size)
            members = self._groups.get(group)
            if not members:
                return position
            now = time.monotonic()
            expires_at = now + self.expiry
            expired = []
            put = self._put
            running = asyncio.get_running_loop()
            for channel, member_until in members.items():
                if member_until <= now:
                    expired.append(channel)
                else:
                    put(channel, (channel, expires_at, data), running)
            for channel in expired:
                del members[channel]
            if expired:
                self._forget_presence(group, expired)
            if not members:
                del self._groups[group]
        return position

    async def group_presence(self, group: str) -> dict[str, dict]:
        """The present members of *group* (their membership not expired): ``{channel: info}``."""
        check_group_name(group)
        now = time.monotonic()
        with self._lock:
            members = self._groups.get(group, {})
            present = self._presence.get(group, {})
            found = {
                channel: info for channel, info in present.items() if members.get(channel, 0) > now
            }
        return {channel: unpack(info) for channel, info in found.items()}

    async def group_history(self, group: str, since: Position | None = None) -> History:
        """What *group* kept after *since*; see :meth:`BaseChannelLayer.group_history`."""
        check_group_name(group)
        retention = self.retention(group)
        since = Position.of(since)
        with self._lock:
            if self._closed:
                raise self._closed_error()
            history = self._histories.get(group)
            epoch = self._epoch
            if history is None:
                kept, dropped, last = [], 0, 0
            else:
                history.trim(retention)
                kept, dropped, last = list(history.entries), history.dropped, history.last
        if since is None:
            after, complete = 0, dropped == 0
        elif since.epoch != epoch:
            after, complete = 0, False
        else:
            after, complete = since.offset, since.offset >= dropped
        messages = [
            (Position(epoch, offset), unpack(data)) for offset, _, data in kept if offset > after
        ]
        return History(messages, complete, Position(epoch, last) if last else None)

    async def group_members(self, group: str) -> list[str]:
        """The channels of *group* whose membership has not expired."""
        check_group_name(group)
        now = time.monotonic()
        with self._lock:
            members = self._groups.get(group, {})
            return [channel for channel, until in members.items() if until > now]

    # Lifecycle and statistics -----------------------------------------------------------

    async def flush(self) -> None:
        """Drop every message and group; waiting receivers keep waiting."""
        with self._lock:
            if self._closed:
                raise self._closed_error()
            for state in self._channels.values():
                state.queue.clear()
            for ready in self._prefix_ready.values():
                ready.clear()
            self._groups.clear()
            self._presence.clear()
            self._histories.clear()
            self._delayed.clear()
            self._epoch = new_epoch()

    async def close(self) -> None:
        """Drop everything; waiting receives raise LayerClosed, as do later calls."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiters = [w for state in self._channels.values() for w in state.waiters]
            waiters.extend(w for queue in self._prefix_waiters.values() for w in queue)
            self._channels.clear()
            self._prefix_waiters.clear()
            self._prefix_ready.clear()
            self._groups.clear()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for waiter in waiters:
            loop = waiter.get_loop()
            if loop is running:
                self._fail(waiter)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(self._fail, waiter)

    def _fail(self, waiter: asyncio.Future) -> None:
        if not waiter.done():
            waiter.set_exception(self._closed_error())

    @staticmethod
    def _closed_error() -> LayerClosed:
        return LayerClosed("The channel layer is closed: build a new layer to go on.")

    async def stats(self, channel: str | None = None) -> LayerStats:
        """Messages pending, the oldest one's age and refused sends, of *channel* or all."""
        if channel is not None:
            check_channel_name(channel)
        now = time.monotonic()
        with self._lock:
            if channel is None:
                states = list(self._channels.items())
                full_count = self._full_count
            else:
                state = self._channels.get(channel)
                states = [(channel, state)] if state is not None else []
                full_count = self._full_counts.get(channel, 0)
            pending = 0
            oldest_expiry = None
            for name, state in states:
                self._drop_expired(name, state, now)
                if state.queue:
                    pending += len(state.queue)
                    head = state.queue[0][1]
                    if oldest_expiry is None or head < oldest_expiry:
                        oldest_expiry = head
        oldest_age = None
        if oldest_expiry is not None:
            oldest_age = max(0.0, now - (oldest_expiry - self.expiry))
        return LayerStats(pending=pending, oldest_age=oldest_age, full_count=full_count)
