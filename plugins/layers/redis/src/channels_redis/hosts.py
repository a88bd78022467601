"""The Redis servers of a layer: one :class:`Shard` per ``hosts`` entry, and the hash ring.

A shard is one Redis deployment reached by one client: a server (``redis://``, ``rediss://``,
``unix://``, a ``(host, port)`` pair or a dict with ``"address"``), a master found through
Sentinel, or a whole Redis Cluster; :mod:`channels_redis.host_forms` makes it from its entry.
Each shard has a circuit breaker: the first call that finds it unreachable opens the breaker
and starts a reconnect loop (exponential backoff, capped); while the breaker is open calls fail
at once with :class:`LayerUnavailable`, and the loop closes it when the server answers again.
The log says so once per outage.

Calls are queued, never refused for want of a connection: at most ``max_connections`` calls
(a layer option) run at once per shard and event loop, each on a connection of its own; more
wait their turn, up to :data:`CALL_TIMEOUT`, then fail with :class:`LayerUnavailable`. Popping
tasks hold a connection each, outside that bound. Scripts go out as ``EVALSHA`` commands packed
by hiredis on connections the shard keeps itself (redis-py's connection objects, without its
per-command client and pool machinery, which cost more than the round trip on a fast server).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels_core.exceptions import LayerUnavailable

logger = logging.getLogger(__name__)

# A blocking pop waits this long (seconds); the call timeout must be longer, or a quiet
# channel would look like a dead server.
BLOCK_SECONDS = 1.0
# Every call is bounded by this (seconds). The layer bounds calls itself rather than setting
# redis-py's socket_timeout, which wraps every write in asyncio.wait_for, a task per command.
CALL_TIMEOUT = 5.0 + BLOCK_SECONDS
# A pop is bounded by this instead. Popped messages travel in its reply, which a short
# partition delays (TCP sends it again when the link heals, after a backoff that can outlast
# CALL_TIMEOUT) but must not lose, as giving up on the call and its connection would; sends
# still notice an outage within CALL_TIMEOUT.
POP_TIMEOUT = 30.0
CONNECT_TIMEOUT = 2.0
RECONNECT_FIRST_DELAY = 0.1
RECONNECT_MAX_DELAY = 5.0
DEFAULT_MAX_CONNECTIONS = 100
# Errors that mean the server cannot be reached (as opposed to a refused command).
OUTAGE_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
)
# SO_LINGER on, 0 s: closing the socket resets the connection and drops what it still holds.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class Script:
    """A Lua script of the layer: its text and SHA1 digest, for ``EVALSHA``."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text.encode()
        self.sha = hashlib.sha1(self.text).hexdigest().encode()


ClientFactory = Callable[[], tuple[Any, list[aioredis.Redis]]]


class _LoopClients:
    """The clients of one shard on one event loop, the connections it keeps, its call slots."""

    def __init__(self, client: Any, helpers: list[aioredis.Redis], max_connections: int) -> None:
        self.client = client
        self.helpers = helpers
        self.nodes: dict[str, aioredis.Redis] = {}
        self.slots = asyncio.Semaphore(max_connections)
        # Per server client (by id): idle connections, most recently used last.
        self.idle: dict[int, list[Any]] = {}
        self.connections: set[Any] = set()

    async def aclose(self, name: str) -> None:
        for connection in self.connections:
            with contextlib.suppress(RedisError, OSError):
                await connection.disconnect(nowait=True)
        self.connections.clear()
        self.idle.clear()
        for client in [self.client, *self.nodes.values(), *self.helpers]:
            try:
                await client.aclose()
            except (RedisError, OSError) as error:
                logger.debug("Closing a Redis client of %s failed: %s", name, error)


class Shard:
    """One Redis deployment of the layer, its clients and its circuit breaker.

    redis-py's asyncio clients belong to the event loop they first ran on, and sync code
    (``Channel(name).send(...)`` from a Django view) runs the layer on short-lived loops of its
    own; so the shard keeps one set of clients per loop, made by *factory*, and closes a loop's
    clients just before that loop closes (as Django Channels' ``channels_redis`` does).

    :param name: the address shown in logs and errors (no password), also its place on the
        hash ring.
    :param factory: makes the client that routes single-slot calls (a ``Redis`` or
        ``RedisCluster``) and the other clients to close with it (a Sentinel's).
    """

    def __init__(
        self,
        name: str,
        factory: ClientFactory,
        is_cluster: bool = False,
        node_options: dict[str, Any] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.name = name
        self.is_cluster = is_cluster
        self.max_connections = max_connections
        self._factory = factory
        self._node_options = node_options or {}
        self._loops: dict[asyncio.AbstractEventLoop, _LoopClients] = {}
        self.down_since: float | None = None
        self._down_error: str = ""
        self._reconnect: asyncio.Task | None = None
        self.closed = False

    @property
    def client(self) -> Any:
        """The client of the running event loop."""
        return self._loop_clients().client

    def _loop_clients(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        clients = self._loops.get(loop)
        if clients is None:
            clients = self._loops[loop] = _LoopClients(*self._factory(), self.max_connections)
            self._close_with(loop)
        return clients

    def _close_with(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close this shard's clients of *loop* when *loop* closes."""
        close_loop = loop.close

        def close() -> None:
            clients = self._loops.pop(loop, None)
            if clients is not None and not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(clients.aclose(self.name))
            close_loop()

        # A loop class without instance attributes (uvloop) keeps its clients until collected.
        with contextlib.suppress(AttributeError):
            loop.close = close

    # Calls ---------------------------------------------------------------------------

    async def run(
        self,
        call: Callable[[], Awaitable[Any]],
        queued: bool = True,
        bound: float = CALL_TIMEOUT,
    ) -> Any:
        """Await ``call()`` for *bound* seconds at most, failing fast while the breaker is
        open.

        A *queued* call waits for one of the shard's ``max_connections`` call slots first (a
        popping task, which holds a connection of its own, is not queued). Raises
        :class:`LayerUnavailable` with a sentence naming this shard.
        """
        if self.down_since is not None:
            self._reconnect_in_background()
            raise self.unavailable()
        slots = self._loop_clients().slots if queued else None
        if slots is not None:
            if slots.locked():
                try:
                    async with asyncio.timeout(CALL_TIMEOUT):
                        await slots.acquire()
                except TimeoutError:
                    raise self.busy() from None
                if self.down_since is not None:
                    # The breaker opened while this call waited (the calls ahead of it found
                    # the server gone): fail now rather than wait for a timeout of its own.
                    slots.release()
                    raise self.unavailable()
            else:
                await slots.acquire()  # free: returns at once
        try:
            async with asyncio.timeout(bound):
                return await call()
        except AuthenticationError as error:
            raise self.authentication_failed(error) from error
        except OUTAGE_ERRORS as error:
            if isinstance(error, TimeoutError) and not str(error):
                # The bound above ran out: a server that drops packets, or stopped answering.
                self.mark_down(f"no answer within {bound:.0f} s")
            else:
                self.mark_down(str(error) or type(error).__name__)
            raise self.unavailable() from error
        except RedisError as error:
            if "NOAUTH" in str(error) or "WRONGPASS" in str(error):
                raise self.authentication_failed(error) from error
            raise LayerUnavailable(f"Redis at {self.name} refused a command: {error}") from error
        finally:
            if slots is not None:
                slots.release()

    def busy(self) -> LayerUnavailable:
        """The error of a call that waited too long for a free connection."""
        return LayerUnavailable(
            f"Every one of the layer's {self.max_connections} connections to Redis at "
            f"{self.name} stayed busy for {CALL_TIMEOUT:.0f} s, so a call was given up "
            "without being made: raise the layer's max_connections option, or make fewer "
            "calls at once."
        )

    def unavailable(self) -> LayerUnavailable:
        """The error of a call made while this shard is down."""
        return LayerUnavailable(
            f"Redis at {self.name} is unreachable ({self._down_error}); the layer retries in "
            "the background: start that server or fix the layer's 'hosts' option."
        )

    def authentication_failed(self, error: Exception) -> LayerUnavailable:
        """The error of a server that refused the layer's credentials."""
        return LayerUnavailable(
            f"Redis at {self.name} refused the layer's credentials: authentication failed "
            f"({error}). Fix the password (and username) in that host's entry of 'hosts'."
        )

    async def script(
        self, script: Script, keys: Sequence[str], args: Sequence[Any], client: Any = None
    ) -> Any:
        """Run *script* on *client*, or on the server holding ``keys[0]``.

        On a Redis Cluster every call goes to a plain client of the node that holds the keys'
        slot (redis-py's cluster client is used only to learn the slot map); a MOVED or ASK
        reply refreshes the map and the call is made once more.
        """
        command = hiredis.pack_command((b"EVALSHA", script.sha, len(keys), *keys, *args))
        if client is not None or not self.is_cluster:
            return await self._evalsha(client or self.client, script, command)
        try:
            return await self._evalsha(await self.node_client(keys[0]), script, command)
        except AskError:
            await self.client.nodes_manager.initialize()
            return await self._evalsha(await self.node_client(keys[0]), script, command)

    async def _evalsha(self, client: aioredis.Redis, script: Script, command: bytes) -> Any:
        """Send the packed ``EVALSHA`` *command*, loading *script* first if the server lacks it."""
        connection = await self.connection(client)
        try:
            await connection.send_packed_command(command, False)
            try:
                reply = await connection.read_response(disconnect_on_error=False)
            except NoScriptError:
                load = hiredis.pack_command((b"SCRIPT", b"LOAD", script.text))
                await connection.send_packed_command(load + command, False)
                await connection.read_response(disconnect_on_error=False)
                reply = await connection.read_response(disconnect_on_error=False)
        except BaseException:
            await self.discard(connection)
            raise
        self.release(client, connection)
        return reply

    async def connection(self, client: aioredis.Redis) -> Any:
        """An idle connection to *client*'s server, or a new one, connected.

        Give it back with :meth:`release`, or :meth:`discard` it when a call on it failed.
        """
        clients = self._loop_clients()
        idle = clients.idle.get(id(client))
        while idle:
            connection = idle.pop()
            try:
                if not await connection.can_read():
                    return connection
            except (RedisError, OSError):
                pass
            # Closed by the server while idle (or holding unread data): not safe to reuse.
            await self.discard(connection)
        connection = client.connection_pool.make_connection()
        clients.connections.add(connection)
        try:
            # connect(), not a first command's implicit connect: a Sentinel-managed connection
            # asks the sentinels for the master only here.
            await connection.connect()
        except BaseException:
            await self.discard(connection)
            raise
        return connection

    def release(self, client: aioredis.Redis, connection: Any) -> None:
        """Make *connection*, which served a complete call, idle again."""
        clients = self._loop_clients()
        if connection in clients.connections:  # not closed with the shard meanwhile
            idle = clients.idle.get(id(client))
            if idle is None:
                idle = clients.idle[id(client)] = []
            idle.append(connection)

    async def discard(self, connection: Any) -> None:
        """Close *connection*, whose state is unknown after a failed or cancelled call.

        The connection is reset, not closed: a command that timed out while the network
        dropped packets may still sit unsent in the kernel, which would send it when the
        network heals, so a send reported failed (and made again) would arrive twice. (The
        layer reads replies with ``disconnect_on_error=False``, so that redis-py leaves the
        closing of a failed connection to this method.)
        """
        self._loop_clients().connections.discard(connection)
        # redis-py has no public way to its socket; a connection not connected has none.
        writer = getattr(connection, "_writer", None)
        sock = writer.get_extra_info("socket") if writer is not None else None
        if sock is not None:
            # A socket the peer already reset may be closed under it: uvloop's socket then
            # raises ValueError (negative file descriptor), asyncio's OSError.
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        with contextlib.suppress(RedisError, OSError):
            await connection.disconnect(nowait=True)

    # The breaker ---------------------------------------------------------------------

    def mark_down(self, reason: str) -> None:
        """Open the breaker for *reason* and start reconnecting (once per outage)."""
        if self.down_since is not None or self.closed:
            return
        self.down_since = time.monotonic()
        self._down_error = reason
        logger.warning(
            "Redis at %s is unreachable (%s); retrying every %.1f s to %.0f s. Sends to it "
            "fail at once until it answers; receives wait.",
            self.name,
            self._down_error,
            RECONNECT_FIRST_DELAY,
            RECONNECT_MAX_DELAY,
        )
        self._reconnect_in_background()

    def _reconnect_in_background(self) -> None:
        """Run the reconnect loop, again if the loop it ran on has gone."""
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        refused = False  # logged once per outage, like the outage itself
        while not self.closed:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(CALL_TIMEOUT):
                    await self.client.ping()
            except AuthenticationError as error:
                if not refused:
                    logger.error("%s", self.authentication_failed(error))
                refused = True
            except (RedisError, OSError):
                pass
            else:
                outage = time.monotonic() - (self.down_since or time.monotonic())
                self.down_since = None
                logger.warning(
                    "Redis at %s is back after %.1f s; messages and group memberships it "
                    "held before the outage are lost if it restarted without persistence.",
                    self.name,
                    outage,
                )
                return
            delay = min(delay * 2, RECONNECT_MAX_DELAY)

    async def wait_up(self) -> None:
        """Wait until the breaker is closed (at once when it is)."""
        while self.down_since is not None and not self.closed:
            self._reconnect_in_background()
            await asyncio.sleep(RECONNECT_FIRST_DELAY)

    # Nodes ---------------------------------------------------------------------------

    async def node_client(self, key: str) -> aioredis.Redis:
        """A plain client of the server holding *key* (the shard's own, unless a cluster)."""
        if not self.is_cluster:
            return self.client
        if not self.client.nodes_manager.slots_cache:
            await self.client.initialize()
        node = self.client.nodes_manager.get_node_from_slot(key_slot(key.encode()))
        return self._client_of(node)

    async def node_clients(self) -> list[aioredis.Redis]:
        """A plain client of every primary server of this shard."""
        if not self.is_cluster:
            return [self.client]
        await self.client.initialize()
        return [self._client_of(node) for node in self.client.get_primaries()]

    def _client_of(self, node: ClusterNode) -> aioredis.Redis:
        nodes = self._loop_clients().nodes
        client = nodes.get(node.name)
        if client is None:
            client = nodes[node.name] = aioredis.Redis(
                host=node.host, port=node.port, **self._node_options
            )
        return client

    async def close(self) -> None:
        """Stop reconnecting and close the connections of the running loop."""
        self.closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        clients = self._loops.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.aclose(self.name)


class HashRing:
    """Consistent hashing of names onto shards, with virtual nodes.

    Each shard takes :attr:`points_per_shard` points on a 64-bit ring, placed by hashing its
    name, so adding a shard moves only about 1/N of the names and the order of ``hosts`` does
    not matter.
    """

    points_per_shard = 160

    def __init__(self, names: Sequence[str]) -> None:
        points = sorted(
            (self._hash(f"{name}#{point}"), index)
            for index, name in enumerate(names)
            for point in range(self.points_per_shard)
        )
        self._hashes = [hashed for hashed, _ in points]
        self._indexes = [index for _, index in points]

    @staticmethod
    def _hash(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    def index(self, name: str) -> int:
        """The index (in ``hosts``) of the shard that holds *name*."""
        position = bisect.bisect(self._hashes, self._hash(name)) % len(self._hashes)
        return self._indexes[position]


__all__ = [
    "BLOCK_SECONDS",
    "DEFAULT_MAX_CONNECTIONS",
    "POP_TIMEOUT",
    "HashRing",
    "Script",
    "Shard",
]
