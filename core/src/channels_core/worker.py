"""The worker: receives on the channels the routing handles and runs their consumers.

``channels worker`` and ``manage.py runworker`` call :func:`run_worker`. The worker runs one
receive loop per channel; a loop receives only while fewer than ``threads`` consumers run,
so a busy worker leaves messages on the layer for its peers. On SIGTERM or SIGINT it stops
receiving (a cancelled receive loses no message), lets the running consumers finish for up
to ``shutdown_timeout`` seconds, calls the ``channels_shutdown`` hooks and closes the layer
(which puts back what it had fetched and nobody received), then returns 0. A worker killed
outright (SIGKILL) loses what it was running and what its layer had fetched for it.

While the layer is unreachable the receive loops retry until it is back, and the consumers'
sends (``Channel(name).send()``, replies included) are held and sent when it is back, within
``CHANNELS["LAYER_OUTAGE"]`` (:mod:`channels_core.outage`); on a stop, held sends get up to
``shutdown_timeout`` seconds to go out.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterable
from functools import partial

from .checks import warn_unknown_channels
from .dispatch import Dispatcher
from .exceptions import ImproperlyConfigured, LayerUnavailable
from .layers import (
    DEFAULT_CHANNEL_LAYER,
    BaseChannelLayer,
    get_channel_layer,
    require_cross_process,
)
from .outage import buffer_for, receive_through_outage
from .plugins import get_registry
from .routing import Router
from .settings import get_settings

logger = logging.getLogger(__name__)

# Consumers mostly wait on the database or the network, so a few threads per core keep the
# cores busy; the cap bounds the database connections a worker holds (one per thread).
DEFAULT_THREADS = min(32, 4 * (os.cpu_count() or 1))
DEFAULT_SHUTDOWN_TIMEOUT = 30.0


def select_channels(
    routed: Iterable[str], only_channels: Iterable[str] = (), exclude_channels: Iterable[str] = ()
) -> list[str]:
    """The routed channels matching any *only_channels* glob and no *exclude_channels* glob.

    Raises :class:`ImproperlyConfigured` when nothing is left to listen on.
    """
    routed = sorted(routed)
    only, exclude = list(only_channels), list(exclude_channels)
    selected = [
        name
        for name in routed
        if (not only or any(fnmatch.fnmatchcase(name, pattern) for pattern in only))
        and not any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude)
    ]
    if not selected:
        handles = ", ".join(routed) or "no channel"
        reasons = []
        if only:
            reasons.append(f"--only-channels {' '.join(only)} matched none")
        if exclude:
            reasons.append(f"--exclude-channels {' '.join(exclude)} excluded the rest")
        raise ImproperlyConfigured(
            f"no channels to listen on: the routing handles {handles}; "
            f"{'; '.join(reasons) or 'add routes to the routing'}."
        )
    return selected


class Worker:
    """A worker process's state: its channels, layer, loop and dispatcher.

    Hooks receive it as ``server``: ``kind`` is ``"worker"``; ``settings``, ``layer``,
    ``loop``, ``dispatcher`` and ``channels`` (the names listened on) are set once it runs.
    """

    kind = "worker"

    def __init__(
        self,
        alias: str = DEFAULT_CHANNEL_LAYER,
        only_channels: Iterable[str] = (),
        exclude_channels: Iterable[str] = (),
        threads: int | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        if threads is not None and (isinstance(threads, bool) or threads < 1):
            raise ImproperlyConfigured(
                f"threads is {threads!r}; it must be a positive number of consumer threads."
            )
        self.alias = alias
        self.settings = get_settings()
        self.router = Router.from_alias(alias)
        warn_unknown_channels(self.router, alias, get_registry())
        self.channels = select_channels(self.router.channels, only_channels, exclude_channels)
        self.threads = threads or DEFAULT_THREADS
        self.shutdown_timeout = shutdown_timeout
        self.dispatcher = Dispatcher(self.router, alias, threads=self.threads)
        self.layer: BaseChannelLayer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        # Set while fewer than ``threads`` consumers run: the receive loops wait on it.
        self._room: asyncio.Event | None = None
        self._consumers: set[asyncio.Task] = set()

    def stop(self) -> None:
        """Ask the running worker to shut down gracefully (from the loop's thread)."""
        if self._stopping is not None:
            self._stopping.set()

    async def _receive_loop(self, channel: str) -> None:
        layer = self.layer
        room = self._room
        while True:
            # Wait for room without reserving it: a loop waiting on a quiet channel must not
            # hold a slot that the loops of busy channels need. Loops that find room at the
            # same moment can run a few more consumers than ``threads`` (at most one per
            # channel); sync ones then queue for the thread pool.
            await room.wait()
            try:
                content = await layer.receive(channel)
            except LayerUnavailable as error:
                content = await receive_through_outage(
                    partial(layer.receive, channel), error, f"on {channel}"
                )
            task = asyncio.create_task(self.dispatcher.dispatch(channel, content), name=channel)
            self._consumers.add(task)
            task.add_done_callback(self._consumer_done)
            if len(self._consumers) >= self.threads:
                room.clear()

    def _consumer_done(self, task: asyncio.Task) -> None:
        self._consumers.discard(task)
        if len(self._consumers) < self.threads:
            self._room.set()

    async def run(self) -> int:
        """Serve until :meth:`stop` is called, then shut down gracefully.

        Returns 0, or 1 when a receive loop failed (the layer broke) and stopped the worker.
        """
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.layer = get_channel_layer(self.alias)
        # The consumers' sends while the layer is unreachable wait here (channels_core.outage).
        outage = buffer_for(self.layer, self.settings.layer_outage, self.loop)
        registry = get_registry()
        self._room = asyncio.Event()
        self._room.set()
        receivers = [
            asyncio.create_task(self._receive_loop(channel), name=f"receive {channel}")
            for channel in self.channels
        ]
        logger.info(
            "Worker listening on %s (layer %r, %d threads)",
            ", ".join(self.channels),
            self.alias,
            self.threads,
        )
        try:
            registry.hook.channels_startup(server=self)
            stopping = asyncio.create_task(self._stopping.wait())
            # A receive loop only ends by failing (the layer broke): stop then too.
            done, _ = await asyncio.wait([stopping, *receivers], return_when="FIRST_COMPLETED")
            stopping.cancel()
        finally:
            for task in receivers:
                task.cancel()
            await asyncio.gather(*receivers, return_exceptions=True)
        status = 0
        for task in receivers:
            if task in done and not task.cancelled() and task.exception() is not None:
                status = 1
                logger.error(
                    "Receiving on %s failed; stopping the worker.",
                    task.get_name(),
                    exc_info=task.exception(),
                )
        await self._finish_consumers()
        try:
            registry.hook.channels_shutdown(server=self)
            # What the consumers sent while the layer was unreachable goes out first.
            await outage.drain(self.shutdown_timeout)
        finally:
            outage.close()
            await self.layer.close()
            self.dispatcher.close()
        return status

    async def _finish_consumers(self) -> None:
        running = len(self._consumers)
        if not running:
            return
        logger.info(
            "Stopping: waiting up to %ss for %d running consumer(s)", self.shutdown_timeout, running
        )
        if await self.dispatcher.drain(self.shutdown_timeout):
            return
        abandoned = sorted(task.get_name() for task in self._consumers)
        logger.warning(
            "Abandoned %d consumer(s) still running after %ss, on channels: %s",
            len(abandoned),
            self.shutdown_timeout,
            ", ".join(abandoned),
        )
        for task in list(self._consumers):
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)

    async def serve(self) -> int:
        """Run with SIGTERM and SIGINT handlers installed; return the exit status."""
        return await until_signalled(self.run, self.stop, "the worker")


async def until_signalled(
    run: Callable[[], Awaitable[int]], stop: Callable[[], None], what: str
) -> int:
    """``await run()`` with SIGTERM and SIGINT handlers that log and call ``stop()``; the
    exit status ``run`` returns. For the long-running commands (a worker, the delay server)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(signum: int) -> None:
        logger.info("Received %s: stopping %s", signal.Signals(signum).name, what)
        stop()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        return await run()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def run_worker(
    alias: str = DEFAULT_CHANNEL_LAYER,
    only_channels: Iterable[str] = (),
    exclude_channels: Iterable[str] = (),
    threads: int | None = None,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
) -> int:
    """Run a worker in this thread until SIGTERM/SIGINT; return the exit status.

    0 after a graceful stop, 1 when the layer failed under a receive loop.

    Sets Django up first if it is configured but not yet set up. Configures no logging: the
    command lines do. Bad settings or options, and a layer that lives in one process
    (``memory``, which no protocol server in another process reaches), raise
    :class:`~channels_core.exceptions.ImproperlyConfigured` before anything starts.
    """
    import django
    from django.apps import apps
    from django.conf import settings as django_settings

    if not apps.ready and (django_settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE")):
        django.setup()
    require_cross_process(
        get_channel_layer(alias),
        "A worker",
        "it receives what the protocol servers send",
        "let channels serve run the consumers itself (in-process mode, the default)",
    )
    worker = Worker(alias, only_channels, exclude_channels, threads, shutdown_timeout)
    return asyncio.run(worker.serve())
