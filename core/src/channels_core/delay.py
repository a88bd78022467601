"""The delay server: puts the messages sent to ``asgi.delay`` on their channels later.

Channels 1.x's ``channels.delay``. A message sent to the channel ``asgi.delay`` with the keys
``channel``, ``content`` (a dict) and ``delay`` (milliseconds, an int of 0 or more)::

    Channel("asgi.delay").send({"channel": "reminders", "content": {"id": 4}, "delay": 5000})

puts ``{"id": 4}`` on ``reminders`` 5,000 milliseconds later. ``channels delay`` and
``manage.py rundelay`` call :func:`run_delay_server`, which runs a :class:`DelayServer`: it
receives on ``asgi.delay``, keeps each request in the layer's own store
(:meth:`~channels_core.layers.BaseChannelLayer.delay_add`: an LMDB database on ``ipc``, a
sorted set on ``redis``), and moves what is due to its channels
(:meth:`~channels_core.layers.BaseChannelLayer.delay_deliver`) when the next message falls
due, and at least every :data:`POLL_INTERVAL` seconds for what other delay servers added.

What is guaranteed:

- A kept message outlives the delay server: stop it, kill it, start it (or another) again,
  and what fell due meanwhile is delivered at once, the rest on time.
- It reaches its channel once. On ``ipc`` and on a one-server ``redis`` it leaves the store in
  the transaction that puts it on its channel, so neither two delay servers nor a crash
  between the two steps can deliver it twice or lose it. On a ``redis`` layer of several
  servers (sharded or Cluster) it is taken out of the store first and then pushed: never
  twice, but a delay server killed between the two loses what it had taken (at most once).
- The request itself is received like any message, at most once: SIGTERM loses none (a
  waiting receive is cancelled cleanly and the request in hand is kept first), but a delay
  server killed outright between receiving a request and keeping it loses that request.
- A due message whose channel is full is tried again every second until ``expiry`` seconds
  past its due time, then dropped with a warning; once on its channel it expires as any
  message does, ``expiry`` seconds later.

Requests without ``channel``, ``content`` or ``delay``, with an invalid channel name, a
``content`` that is not a dict, or a ``delay`` that is not an int of 0 or more, are logged
with one sentence and dropped; so are delays over ``max_delay`` (30 days by default,
``--max-delay``), which are refused rather than shortened.

On the ``memory`` layer delayed messages live in the process's memory: a :class:`DelayServer`
running in the same process (given that process's layer) delivers them, and
:func:`run_delay_server` refuses it, as no other process could send it anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .exceptions import ChannelsError, ImproperlyConfigured, LayerUnavailable
from .layers import DEFAULT_CHANNEL_LAYER, BaseChannelLayer, get_channel_layer, resolve_backend
from .names import check_channel_name
from .settings import get_settings

logger = logging.getLogger(__name__)

DELAY_CHANNEL = "asgi.delay"
#: The longest delay accepted by default (seconds): 30 days.
DEFAULT_MAX_DELAY = 30 * 24 * 3600.0
#: How often a delay server looks for due messages that it was not told of (seconds): those
#: another delay server added and did not deliver (it stopped first).
POLL_INTERVAL = 1.0
#: How long to wait before calling a layer that could not be reached again (seconds).
OUTAGE_RETRY = 1.0

_Result = TypeVar("_Result")


@dataclass(frozen=True)
class DelayRequest:
    """A checked request sent to ``asgi.delay``: put *content* on *channel* in *delay*
    seconds."""

    channel: str
    content: dict
    delay: float


def parse_delay_request(message: Any, max_delay: float = DEFAULT_MAX_DELAY) -> DelayRequest:
    """The :class:`DelayRequest` in a message received on ``asgi.delay``.

    Raises :class:`ValueError` with the one sentence to log when the message is not one.
    """
    needs = "it needs 'channel', 'content' (a dict) and 'delay' (milliseconds, an int of 0 or more)"
    missing = [key for key in ("channel", "content", "delay") if key not in message]
    if missing:
        named = [repr(key) for key in missing]
        keys = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
        raise ValueError(f"Dropped a message sent to {DELAY_CHANNEL} without {keys}: {needs}.")
    channel, content, delay = message["channel"], message["content"], message["delay"]
    try:
        check_channel_name(channel)
    except ChannelsError as error:
        raise ValueError(
            f"Dropped a message sent to {DELAY_CHANNEL} whose 'channel' is invalid "
            f"({str(error).rstrip('.')})."
        ) from None
    if not isinstance(content, dict):
        raise ValueError(
            f"Dropped a message sent to {DELAY_CHANNEL} for {channel!r} whose 'content' is a "
            f"{type(content).__name__}, not a dict: send the message to deliver as a dict."
        )
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ValueError(
            f"Dropped a message sent to {DELAY_CHANNEL} for {channel!r} whose 'delay' is "
            f"{delay!r}: give the delay in milliseconds, an int of 0 or more."
        )
    if delay > max_delay * 1000:
        raise ValueError(
            f"Dropped a message sent to {DELAY_CHANNEL} for {channel!r} with a delay of "
            f"{delay} ms, more than this delay server's maximum of {max_delay:.10g} s: send a "
            "shorter delay, or run the delay server with a larger --max-delay."
        )
    return DelayRequest(channel, content, delay / 1000)


class DelayServer:
    """Receives on ``asgi.delay``, keeps each request in the layer, delivers when due.

    :param alias: the ``CHANNEL_LAYERS`` alias.
    :param max_delay: the longest delay accepted, in seconds; longer ones are dropped.
    :param layer: the layer to use, which :meth:`run` then leaves open (a delay server inside
        a process that uses the layer too, as on the ``memory`` layer); by default the alias's
        layer of this process, closed when :meth:`run` ends.
    """

    def __init__(
        self,
        alias: str = DEFAULT_CHANNEL_LAYER,
        max_delay: float = DEFAULT_MAX_DELAY,
        layer: BaseChannelLayer | None = None,
    ) -> None:
        if (
            isinstance(max_delay, bool)
            or not isinstance(max_delay, (int, float))
            or not 0 < max_delay < math.inf
        ):
            raise ImproperlyConfigured(
                f"The maximum delay is {max_delay!r}; it must be a positive number of seconds "
                "(--max-delay 86400 accepts delays of up to a day)."
            )
        self.alias = alias
        self.max_delay = float(max_delay)
        self.layer = layer
        self._own_layer = layer is None
        self._stopping: asyncio.Event | None = None
        # Set to make the delivering loop look at once: a request was kept, or stopping.
        self._wake: asyncio.Event | None = None
        self._receiving = False

    def stop(self) -> None:
        """Ask the running delay server to stop (from the loop's thread)."""
        if self._stopping is not None:
            self._stopping.set()
            self._wake.set()

    async def run(self) -> int:
        """Serve until :meth:`stop` is called; 0, or 1 when the layer failed."""
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        if self.layer is None:
            self.layer = get_channel_layer(self.alias)
        if "delay" not in self.layer.extensions:
            raise ImproperlyConfigured(
                f"The layer {self.alias!r} ({type(self.layer).__name__}) cannot keep delayed "
                "messages: use a layer with the 'delay' extension (memory, ipc, redis)."
            )
        receiver = asyncio.create_task(self._receive_loop(), name=f"receive {DELAY_CHANNEL}")
        deliverer = asyncio.create_task(self._deliver_loop(), name="deliver delayed")
        logger.info(
            "Delay server listening on %s (layer %r, %s)",
            DELAY_CHANNEL,
            self.alias,
            type(self.layer).__name__,
        )
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait([stopping, receiver, deliverer], return_when="FIRST_COMPLETED")
        finally:
            stopping.cancel()
            self.stop()
            # A receive that waits is cancelled (it loses nothing); a request in hand is kept
            # first, and a delivery under way finishes: neither loop is cancelled mid-step.
            if self._receiving:
                receiver.cancel()
            outcomes = await asyncio.gather(receiver, deliverer, return_exceptions=True)
            if self._own_layer:
                await self.layer.close()
        status = 0
        for task, outcome in zip((receiver, deliverer), outcomes, strict=True):
            if isinstance(outcome, Exception):
                status = 1
                logger.error(
                    "%s failed; stopping the delay server.", task.get_name(), exc_info=outcome
                )
        logger.info("Delay server stopped.")
        return status

    async def _receive_loop(self) -> None:
        layer = self.layer
        while not self._stopping.is_set():
            self._receiving = True
            try:
                message = await layer.receive(DELAY_CHANNEL)
            finally:
                self._receiving = False
            try:
                request = parse_delay_request(message, self.max_delay)
            except ValueError as error:
                logger.warning("%s", error)
                continue
            await self._until_reached(
                functools.partial(layer.delay_add, request.channel, request.content, request.delay),
                f"keeping a delayed message for {request.channel!r}",
            )
            logger.debug("Keeping a message for %r for %s s", request.channel, request.delay)
            self._wake.set()

    async def _deliver_loop(self) -> None:
        layer = self.layer
        wake = self._wake
        while not self._stopping.is_set():
            wake.clear()
            done = await self._until_reached(layer.delay_deliver, "delivering delayed messages")
            if done.delivered:
                logger.debug("Delivered %d delayed messages", done.delivered)
            for channel in done.dropped:
                logger.warning(
                    "Dropped a delayed message for %r: its channel stayed full for the layer's "
                    "expiry past its due time; receive from it faster or raise its capacity.",
                    channel,
                )
            wait = POLL_INTERVAL if done.next_due is None else min(done.next_due, POLL_INTERVAL)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), wait)

    async def _until_reached(self, call: Callable[[], Awaitable[_Result]], what: str) -> _Result:
        """``await call()``, again every :data:`OUTAGE_RETRY` seconds while the layer cannot
        be reached and the server is not stopping."""
        failing = False
        while True:
            try:
                result = await call()
            except LayerUnavailable as error:
                if self._stopping.is_set():
                    raise
                if not failing:
                    logger.warning("%s failed (%s); trying again.", what.capitalize(), error)
                    failing = True
                await asyncio.sleep(OUTAGE_RETRY)
                continue
            if failing:
                logger.warning("%s works again.", what.capitalize())
            return result

    async def serve(self) -> int:
        """Run with SIGTERM and SIGINT handlers installed; return the exit status."""
        from .worker import until_signalled

        return await until_signalled(self.run, self.stop, "the delay server")


def run_delay_server(
    alias: str = DEFAULT_CHANNEL_LAYER, max_delay: float = DEFAULT_MAX_DELAY
) -> int:
    """Run a delay server in this thread until SIGTERM/SIGINT; return the exit status.

    0 after a graceful stop, 1 when the layer failed. Sets Django up first if it is
    configured but not yet set up. Raises :class:`ImproperlyConfigured` before anything
    starts for bad settings, a layer that keeps no delayed messages, or one that lives in
    this process only (``memory``), where no other process's request could reach it.
    """
    import django
    from django.apps import apps
    from django.conf import settings as django_settings

    if not apps.ready and (django_settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE")):
        django.setup()
    layer_class = resolve_backend(get_settings().layer(alias).backend)
    if not layer_class.cross_process:
        raise ImproperlyConfigured(
            f"The layer {alias!r} ({layer_class.__name__}) lives in one process, so no other "
            f"process's message to {DELAY_CHANNEL} can reach a delay server of its own: use a "
            "cross-process layer (channels-ipc on one machine, channels-redis on several), or "
            "run a DelayServer inside the process that sends."
        )
    server = DelayServer(alias, max_delay)
    return asyncio.run(server.serve())
