"""The popping tasks: one per Redis list this process waits on, while receives wait.

A receive registers a future (:mod:`channels_redis.waiters`) and this process runs one popping
task per Redis list it waits on: ``BLPOP``, one message at a time, for a normal channel (its
list is shared with other processes, so nobody hoards it), and for a process list, which only
this process reads, a script that pops a whole batch and frees its capacity in one call, after
a ``BLMOVE`` of the list's head to its head that waits for an entry (it removes nothing, so
every pop goes through the script, which keeps the capacity counts exact).
Popping tasks are never cancelled mid-command, so a cancelled receive loses nothing: what is
popped for nobody is buffered for the next receive, and closing the layer puts what is
buffered back at the head of its list.

A pop's reply can be lost with its connection when Redis stops after the pop ran: the message
would be out of its list and in no process. So each pop also keeps what it takes in this
process's in-flight list for that list (``i:{...}:<id>``, see :mod:`channels_redis.keys`)
until its next pop, which deletes it first: the ``BLMOVE`` of a normal channel moves the entry
there, and the script of a process list copies its batch there. After a failed pop the next
connection first reads the in-flight list and delivers what it holds, unless it is what the
last reply that did arrive held. With a Redis that persists every write (``appendfsync
always``), a restart loses nothing that was sent and not received, and delivers nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from channels_core.exceptions import LayerUnavailable
from channels_core.names import process_prefix

from . import scripts
from .crypto import MessageCipher
from .hosts import BLOCK_SECONDS, POP_TIMEOUT, Script, Shard
from .keys import Runner
from .waiters import Waiters

# A process list's popping task takes at most this many entries (and about this many bytes)
# per script call.
_BATCH_COUNT = 1000
_BATCH_BYTES = 4 * 1024 * 1024
_POP_BATCH = Script(scripts.POP_BATCH)


def _resolve(future: asyncio.Future | None, value: bool) -> None:
    if future is not None and not future.done():
        future.set_result(value)


class PoppedList:
    """A Redis list this process pops from: its waiting receives and its popping task."""

    __slots__ = (
        "blocked",
        "channel",
        "client",
        "client_id",
        "connection",
        "counts",
        "inflight",
        "key",
        "last",
        "owner",
        "shard",
        "task",
        "unsure",
        "waiting",
        "waiting_up",
        "wakeup",
    )  # fmt: skip

    def __init__(
        self, shard: Shard, key: str, counts: str, inflight: str, owner: str | None, channel: str
    ) -> None:
        self.shard = shard
        self.key = key
        self.counts = counts
        self.inflight = inflight
        # The entries of the last pop whose reply arrived (all delivered), and whether a pop
        # failed since, so that the in-flight list may hold entries no reply brought.
        self.last: list[bytes] = []
        self.unsure = False
        self.owner = owner  # the process prefix of a process list, None for a normal channel
        self.channel = channel
        # Receives waiting for a message; one that is handed a message no longer counts, so
        # the popping task pops only for receives that wait (no hoarding).
        self.waiting = 0
        # While the popping task waits for a receive: the future a receive resolves.
        self.wakeup: asyncio.Future | None = None
        self.task: asyncio.Task | None = None
        self.connection: Any = None
        self.client: aioredis.Redis | None = None
        self.client_id: int | None = None
        self.blocked = False
        self.waiting_up = False


class Popper:
    """The popped lists of a layer and their popping tasks.

    :param route: the layer's ``KeyRouter.route``.
    :param run: how the layer makes a call on a shard (LayerClosed once it is closed).
    :param waiting: where popped messages go.
    :param cipher: decrypts popped messages, if the layer encrypts them.
    :param drop: counts a message of a channel dropped as unreadable (``drop(channel,
        decrypted=False)`` for one no key decrypts).
    :param inflight_key: the key of this process's in-flight list for a list's key.
    :param inflight_ttl: how long an in-flight list is kept, in seconds (as long as the
        messages it holds).
    """

    def __init__(
        self,
        route: Callable[[str], tuple[Shard, tuple[str, str, str, str]]],
        run: Runner,
        waiting: Waiters,
        cipher: MessageCipher | None,
        drop: Callable[..., None],
        inflight_key: Callable[[str], str],
        inflight_ttl: int,
    ) -> None:
        self._route = route
        self._inflight_key = inflight_key
        self._inflight_ttl = inflight_ttl
        # The last entries of the lists whose popping task ended after a failed pop: the
        # next task on that list starts by reading its in-flight list.
        self._unsure: dict[str, list[bytes]] = {}
        self._run = run
        self._deliver = waiting.deliver
        self._fail_waiters = waiting.fail
        self._cipher = cipher
        self._drop = drop
        self.lists: dict[str, PoppedList] = {}
        self.closed = False

    def popped_list(self, name: str) -> PoppedList:
        """The popped list serving *name*: a channel, or a process prefix."""
        shard, keys = self._route(name)
        popped = self.lists.get(keys[0])
        if popped is None:
            owner = process_prefix(name) if "!" in name else None
            popped = self.lists[keys[0]] = PoppedList(
                shard, keys[0], keys[1], self._inflight_key(keys[0]), owner, name
            )
            last = self._unsure.pop(keys[0], None)
            if last is not None:
                popped.unsure, popped.last = True, last
        return popped

    async def wait(
        self, popped: PoppedList, waiters: dict[str, deque[asyncio.Future]], name: str
    ) -> tuple[str, bytes]:
        """Wait for the popping task of *popped* to hand over a message for *name*."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        queue = waiters.get(name)
        if queue is None:
            queue = waiters[name] = deque()
        queue.append(future)
        popped.waiting += 1
        wakeup = popped.wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(True)
        if popped.task is None:
            popped.task = loop.create_task(self._pop_loop(popped))
        try:
            handed = await future
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Handed over, then cancelled before this receive ran: keep it for the next.
                self._deliver(popped, *future.result(), front=True)
            else:
                # Not handed a message (which would have taken it out of the queue and the
                # count).
                popped.waiting -= 1
                if future in queue:
                    queue.remove(future)
                if not queue and waiters.get(name) is queue:
                    del waiters[name]
            raise
        return handed[0], handed[2]

    def _dispatch(self, popped: PoppedList, entry: bytes, now: float) -> None:
        """Deliver one popped *entry* unless expired."""
        expires_text, _, rest = entry.partition(b"|")
        if popped.owner is None:
            names, data = b"", rest
        else:
            names, _, data = rest.partition(b"|")
        expires_at = float(expires_text)
        if expires_at <= now:
            return
        if popped.owner is None:
            channels = [popped.channel]
        elif b"," in names:
            channels = names.decode().split(",")
        else:
            channels = [names.decode()]
        if self._cipher is not None:
            # Once per entry, however many channels it is for. A group message's position
            # stays in front of the packed message (see channels_redis.history).
            position = b""
            if data[:1] == b"@":
                cut = data.find(b"|") + 1
                position, data = data[:cut], data[cut:]
            data = self._cipher.decrypt(data)
            if data is None:
                for channel in channels:
                    self._drop(channel, decrypted=False)
                return
            if position:
                data = position + data
        deliver = self._deliver
        for channel in channels:
            deliver(popped, channel, expires_at, data)

    async def _pop_loop(self, popped: PoppedList) -> None:
        """Pop *popped*'s list while receives wait on it; wait out outages of its server."""
        try:
            while not self.closed:
                try:
                    if not await self._pop_some(popped):
                        return
                except LayerUnavailable:
                    if popped.shard.down_since is None or self.closed:
                        raise
                    self._release(popped)
                    popped.waiting_up = True
                    try:
                        await popped.shard.wait_up()
                    finally:
                        popped.waiting_up = False
        except LayerUnavailable as error:
            # Not an outage (bad credentials, a refused command): the receives must know.
            self._fail_waiters(popped, error)
        finally:
            self._release(popped)
            popped.task = None
            if self.lists.get(popped.key) is popped:
                del self.lists[popped.key]
                if popped.unsure and not self.closed:
                    self._unsure[popped.key] = popped.last

    async def _pop_some(self, popped: PoppedList) -> bool:
        """Pop while receives wait; False once none has come for a while, or when closed."""
        while True:
            while not popped.waiting:
                if self.closed or not await self._wait_for_receive(popped):
                    return False
            if self.closed:
                return False
            await self._run(
                popped.shard,
                functools.partial(self._pop, popped),
                queued=False,
                bound=POP_TIMEOUT,
            )

    @staticmethod
    async def _wait_for_receive(popped: PoppedList) -> bool:
        """Wait a while for a receive on *popped*'s list; False if none comes."""
        loop = asyncio.get_running_loop()
        popped.wakeup = loop.create_future()
        timer = loop.call_later(BLOCK_SECONDS, _resolve, popped.wakeup, False)
        try:
            return await popped.wakeup
        finally:
            timer.cancel()
            popped.wakeup = None

    async def _pop(self, popped: PoppedList) -> None:
        """One round trip on *popped*'s own connection, delivering what it pops.

        A normal channel's list: a ``BLMOVE`` of its head to this process's in-flight list,
        after deleting what that held (the last pop, delivered). A process list: a ``BLMOVE``
        of the list's head to its head, which removes nothing but waits until the list holds
        an entry, pipelined with the script that pops a batch, keeps it in flight and frees its
        capacity: every pop of a process list goes through that script, so its channels'
        counts stay exact. After a failed pop, the in-flight list is read first.
        """
        connection = await self._connection(popped)
        if popped.unsure and await self._recover(popped, connection):
            return  # the receives it served may have been all that waited
        inflight = popped.inflight
        if popped.owner is None:
            command = (
                hiredis.pack_command((b"DEL", inflight))
                + hiredis.pack_command(
                    (b"BLMOVE", popped.key, inflight, b"LEFT", b"RIGHT", BLOCK_SECONDS)
                )
                + hiredis.pack_command((b"EXPIRE", inflight, self._inflight_ttl))
            )
        else:
            script = _POP_BATCH
            keys_and_args = (
                popped.key,
                popped.counts,
                inflight,
                _BATCH_COUNT,
                _BATCH_BYTES,
                self._inflight_ttl,
            )
            command = hiredis.pack_command(
                (b"BLMOVE", popped.key, popped.key, b"LEFT", b"LEFT", BLOCK_SECONDS)
            ) + hiredis.pack_command((b"EVALSHA", script.sha, 3, *keys_and_args))
        popped.blocked = True
        try:
            await connection.send_packed_command(command, False)
            if popped.owner is None:
                await connection.read_response(disconnect_on_error=False)
            reply = await connection.read_response(disconnect_on_error=False)
            if popped.owner is None:
                popped.blocked = False
                await connection.read_response(disconnect_on_error=False)
            else:
                popped.blocked = False
                try:
                    reply = await connection.read_response(disconnect_on_error=False)
                except NoScriptError:
                    await connection.send_packed_command(
                        hiredis.pack_command((b"SCRIPT", b"LOAD", script.text)), False
                    )
                    await connection.read_response(disconnect_on_error=False)
                    reply = None
        except BaseException:
            # The connection is in an unknown state; never reuse it. The pop may have run.
            popped.unsure = True
            popped.connection = None
            await popped.shard.discard(connection)
            raise
        finally:
            popped.blocked = False
        if not reply:
            return
        now = time.time()
        if popped.owner is None:
            popped.last = [reply]
            self._dispatch(popped, reply, now)
            return
        popped.last = reply
        await self._yield_to_woken()
        for entry in reply:
            self._dispatch(popped, entry, now)

    async def _recover(self, popped: PoppedList, connection: Any) -> bool:
        """Deliver what *popped*'s in-flight list holds after a failed pop, unless the last
        reply that arrived brought it (then the pop that failed never ran); True if it
        delivered any."""
        try:
            await connection.send_packed_command(
                hiredis.pack_command((b"LRANGE", popped.inflight, 0, -1)), False
            )
            entries = await connection.read_response(disconnect_on_error=False)
        except BaseException:
            popped.connection = None
            await popped.shard.discard(connection)
            raise
        popped.unsure = False
        if not entries or entries == popped.last:
            return False
        popped.last = entries
        now = time.time()
        for entry in entries:
            self._dispatch(popped, entry, now)
        return True

    @staticmethod
    async def _yield_to_woken() -> None:
        """Let the tasks already woken run before a process list's entry is handed over.

        An entry of a group send may wake a thousand receives, and the task that made that
        group send (its reply came with the entry) would otherwise make its next call only
        after all of them: Redis would sit idle while they run, then this process while Redis
        runs that next call.
        """
        await asyncio.sleep(0)

    async def _connection(self, popped: PoppedList) -> Any:
        """*popped*'s own connection (its server's client id known, for CLIENT UNBLOCK)."""
        if popped.connection is None:
            popped.client = await popped.shard.node_client(popped.key)
            connection = await popped.shard.connection(popped.client)
            try:
                await connection.send_packed_command(hiredis.pack_command((b"CLIENT", b"ID")))
                popped.client_id = await connection.read_response(disconnect_on_error=False)
            except BaseException:
                await popped.shard.discard(connection)
                raise
            popped.connection = connection
        return popped.connection

    def _release(self, popped: PoppedList) -> None:
        connection, popped.connection = popped.connection, None
        if connection is not None:
            popped.shard.release(popped.client, connection)

    async def stop(self) -> None:
        """Stop every popping task: let in-flight pops finish, then end the tasks."""
        self.closed = True
        tasks = [popped.task for popped in self.lists.values() if popped.task is not None]
        for popped in self.lists.values():
            _resolve(popped.wakeup, True)
        for popped in list(self.lists.values()):
            if popped.waiting_up and popped.task is not None:
                popped.task.cancel()
        await self._unblock_pops(tasks)

    async def _unblock_pops(self, tasks: list[asyncio.Task]) -> None:
        """Wake the blocked ``BLPOP`` and ``BLMOVE`` commands; wait for their tasks."""
        deadline = time.monotonic() + BLOCK_SECONDS + 1
        while tasks and time.monotonic() < deadline:
            for popped in list(self.lists.values()):
                if popped.blocked and popped.client_id is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await popped.client.execute_command("CLIENT", "UNBLOCK", popped.client_id)
            _, pending = await asyncio.wait(tasks, timeout=0.05)
            tasks = list(pending)
        for task in tasks:
            # Past the bound (a server that stopped answering): give up on this pop.
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
