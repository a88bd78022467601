"""Presence: the heartbeat that keeps a process's present members present while it lives.

``group_add(group, channel, presence=info)`` stores ``<process id>|<packed info>`` (the info
encrypted when the layer encrypts) in the group's presence hash, ``gp:{<group>}`` (see
:mod:`channels_redis.keys`); the process id names the layer instance that added it. A layer
instance with present members keeps its heartbeat key, ``hb:{<process id>}``, which expires
``presence_timeout`` after it was last set. :class:`Heartbeat` sets it with every presence
``group_add`` and, from a thread of its own, every third of ``presence_timeout``: a process
whose event loop is busy, or whose sync code runs the layer on short-lived event loops, keeps
its members present, and a process that is killed loses them within ``presence_timeout``.

``group_presence`` (:mod:`channels_redis.groups`) reads the presence of the members whose
membership has not expired, asks :func:`alive_processes` which of their processes still have a
heartbeat, and removes the presence of the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import threading
from collections.abc import Iterable

from channels_core.exceptions import LayerClosed, LayerUnavailable

from .hosts import CALL_TIMEOUT
from .keys import KeyRouter, Runner

logger = logging.getLogger(__name__)


class Heartbeat:
    """The heartbeat key of one layer instance (a process), and the thread renewing it.

    :param process_id: the id its members' presence names.
    :param router: the layer's key router, which places the key.
    :param run: how the layer makes a call on a shard (LayerClosed once it is closed).
    :param timeout: the layer's ``presence_timeout`` (seconds).
    """

    def __init__(self, process_id: str, router: KeyRouter, run: Runner, timeout: float) -> None:
        self.process_id = process_id
        self._shard, self.key = router.heartbeat_route(process_id)
        self._run = run
        self._timeout_ms = math.ceil(timeout * 1000)
        self._interval = timeout / 3
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._done: concurrent.futures.Future = concurrent.futures.Future()
        # The thread's event loop, and the event that wakes it to stop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None

    async def beat(self) -> None:
        """Set the heartbeat key, which expires ``presence_timeout`` from now."""
        shard, key, timeout_ms = self._shard, self.key, self._timeout_ms

        async def set_key() -> None:
            client = await shard.node_client(key)
            await client.set(key, b"1", px=timeout_ms)

        await self._run(shard, set_key)

    def start(self) -> None:
        """Renew the heartbeat from now on, until :meth:`stop` (at once when renewing)."""
        if self._thread is None and not self._stopped.is_set():
            self._thread = threading.Thread(
                target=self._main, name=f"channels-redis heartbeat {self.key}", daemon=True
            )
            self._thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._renew())
        finally:
            self._done.set_result(None)

    async def _renew(self) -> None:
        """Set the key every third of ``presence_timeout`` (the thread's event loop)."""
        self._wakeup = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        failing = False
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._interval)
            if self._stopped.is_set():
                return
            try:
                await self.beat()
            except LayerClosed:
                return
            except LayerUnavailable as error:
                if not failing:
                    logger.warning(
                        "The presence heartbeat %s could not be renewed (%s); this process's "
                        "present members leave the presence %.1f s after its last renewal, "
                        "and the heartbeat is retried every %.1f s.",
                        self.key,
                        error,
                        self._timeout_ms / 1000,
                        self._interval,
                    )
                failing = True
            else:
                failing = False

    async def stop(self) -> None:
        """Stop renewing and delete the key: this process's members are no longer present."""
        self._stopped.set()
        if self._thread is None:
            return
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None:
            with contextlib.suppress(RuntimeError):  # its loop already closed
                loop.call_soon_threadsafe(wakeup.set)
        # A renewal in flight takes at most a call's timeout; asyncio.wait never cancels it.
        await asyncio.wait([asyncio.wrap_future(self._done)], timeout=CALL_TIMEOUT + 1)
        shard, key = self._shard, self.key

        async def delete() -> None:
            client = await shard.node_client(key)
            await client.delete(key)

        try:
            await self._run(shard, delete)
        except (LayerUnavailable, LayerClosed) as error:
            logger.debug("The presence heartbeat %s was not deleted: %s", key, error)


async def alive_processes(router: KeyRouter, run: Runner, processes: Iterable[str]) -> set[str]:
    """The *processes* whose heartbeat key exists: one call per process, all at once."""
    processes = list(processes)

    async def alive(process_id: str) -> bool:
        shard, key = router.heartbeat_route(process_id)

        async def exists() -> int:
            client = await shard.node_client(key)
            return await client.exists(key)

        return bool(await run(shard, exists))

    found = await asyncio.gather(*(alive(process_id) for process_id in processes))
    return {process_id for process_id, live in zip(processes, found, strict=True) if live}
