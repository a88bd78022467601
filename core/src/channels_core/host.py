"""The host: the one object every event source talks to, built-in or third-party.

A protocol plugin (a socket server, a serial modem, a timer) is given a :class:`Host` and uses
these calls, and nothing else of the kernel's:

- :meth:`Host.open_reply` / :meth:`Host.close_reply`: a reply channel bound to a handler, for
  a connection's life;
- :meth:`Host.emit` (and :meth:`Host.emit_nowait`): hand an event to its consumer. Where it
  goes is decided here and only here: the routed consumer in this process, the channel layer
  for ``channels worker`` processes (worker mode), or an ASGI application that ``channels
  serve module:app`` serves for the protocols that can feed one;
- :meth:`Host.request`: emit an event and await its one reply, with a timeout;
- :meth:`Host.send` / :meth:`Host.receive`: channels a protocol consumes or feeds through the
  layer (``sms.send``), outside any connection;
- :meth:`Host.spawn`: run a coroutine from a callback; :meth:`Host.hold`: mark work in flight
  (a reply still owed), which draining waits for, within the drain timeout, before the
  process shuts down, as it waits for the consumers running in-process.

What the host does it also counts, in plain integers where it already does the work (reply
channels opened and closed, events emitted, replies handled, refusals), for an observer such
as a metrics plugin to read when it likes through :attr:`Host.counters`: nothing is called
per message on anyone's behalf.

:class:`~channels_core.server.ProtocolServer` (``channels serve``) is a host with listeners
and a Twisted reactor; :class:`~channels_core.application.ChannelsApplication` (consumers
served by another ASGI server) is a host without listeners.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from . import local
from .counters import HostCounters, count, reply_family
from .exceptions import (
    ChannelFull,
    EventRefused,
    ImproperlyConfigured,
    LayerUnavailable,
    NoRoute,
    ReplyTimeout,
)
from .layers import DEFAULT_CHANNEL_LAYER, get_channel_layer
from .names import check_channel_name, random_suffix
from .outage import buffer_for
from .settings import MODES

if TYPE_CHECKING:
    from .dispatch import Timing
    from .plugins import Registry
    from .protocols import ProtocolSpec
    from .settings import ChannelsSettings

logger = logging.getLogger(__name__)

DEFAULT_DRAIN_TIMEOUT = 10.0

#: What a reply channel's handler is: ``handler(content)``, a plain function run on the
#: host's loop (it must not block), or an ``async def`` run as work in flight.
ReplyHandler = Callable[[dict], None] | Callable[[dict], Awaitable[None]]
#: What :meth:`Host.emit` hands an event to: ``target(channel, content, reraise=...)``.
EmitTarget = Callable[..., Coroutine[Any, Any, bool]]


class _Resume:
    """Awaiting it goes on with a coroutine that was started by hand and now waits.

    The coroutine's first step ran in *context* and gave *waiting* (what a coroutine gives
    its task when it waits: usually a future). The task awaiting this object takes *waiting*
    as its own, and each later step (a value sent or an exception thrown, cancellation
    included) is passed on to the coroutine, in *context*, as its own task would.
    """

    __slots__ = ("context", "coroutine", "waiting")

    def __init__(
        self, coroutine: Coroutine[Any, Any, Any], context: contextvars.Context, waiting: Any
    ) -> None:
        self.coroutine = coroutine
        self.context = context
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine, context, waiting = self.coroutine, self.context, self.waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as error:  # every one, cancellation included, goes on
                step, argument = coroutine.throw, error
            else:
                step, argument = coroutine.send, sent
            try:
                waiting = context.run(step, argument)
            except StopIteration as finished:
                return finished.value


def _log_late_failure(task: asyncio.Task) -> None:
    """Log the failure of an emit that :meth:`Host.request` no longer waits for."""
    if not task.cancelled() and task.exception() is not None:
        logger.error(
            "The consumer of a request raised after its reply (or its timeout).",
            exc_info=task.exception(),
        )


class _Held:
    """What :meth:`Host.hold` returns: a reusable context manager counting work in flight."""

    __slots__ = ("host",)

    def __init__(self, host: Host) -> None:
        self.host = host

    def __enter__(self) -> None:
        self.host._in_flight += 1

    def __exit__(self, *exc_info: object) -> None:
        self.host._done_one()


class Host:
    """Where a process's events enter the kernel; see the module docstring.

    :param settings: the process's :class:`~channels_core.settings.ChannelsSettings`.
    :param registry: the plugin :class:`~channels_core.plugins.Registry`.
    :param protocols: the enabled protocols' specs (for their ASGI adapters).
    :param alias: the ``CHANNEL_LAYERS`` alias whose layer and routing the host uses.
    :param loop: the event loop the host runs on; the running loop when None.
    :param drain_timeout: how long :meth:`drain` lets work in flight finish, in seconds.
    :param asgi_app: an ASGI application to serve the events of the protocols that can
        feed one (HTTP, WebSocket), instead of the routing.
    :param mode: ``"inprocess"`` or ``"worker"``; None takes ``CHANNELS["MODE"]``.

    Read-only attributes for plugins: ``settings``, ``registry``, ``alias``, ``mode``,
    ``loop``, ``drain_timeout``, ``draining`` (True once draining began), ``restarting``
    (True when that drain is a restart), ``kind`` (``"server"`` or ``"application"``) and
    ``counters`` (a :class:`~channels_core.counters.HostCounters`, for observers).
    """

    kind = "host"

    def __init__(
        self,
        settings: ChannelsSettings,
        registry: Registry,
        protocols: Iterable[ProtocolSpec] = (),
        alias: str = DEFAULT_CHANNEL_LAYER,
        loop: asyncio.AbstractEventLoop | None = None,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        asgi_app: Any = None,
        mode: str | None = None,
    ) -> None:
        if mode is not None and mode not in MODES:
            raise ImproperlyConfigured(
                f"The server mode is {mode!r}; use 'inprocess' (the server runs the consumers) "
                "or 'worker' (channels worker processes run them)."
            )
        self.settings = settings
        self.registry = registry
        self.alias = alias
        self.mode = mode or settings.mode
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.drain_timeout = drain_timeout
        #: True once the host has begun to drain: a protocol may refuse new work (SMTP 421,
        #: BUSY) instead of starting what draining would have to wait for.
        self.draining = False
        #: True when the drain is a restart (a rolling restart of ``channels serve --processes``)
        #: rather than a shutdown: a protocol may tell its clients to come back at once
        #: (WebSocket close code 1012, "service restart", instead of 1001, "going away").
        self.restarting = False
        #: What the host counted, for observers (a metrics plugin): see HostCounters.
        self.counters = HostCounters(self)
        # The count emit() keeps, without an attribute lookup more per event.
        self._emitted = self.counters._emitted
        # Layer sends' latency once observed (HostCounters.observe); None costs a send and a
        # reply channel's opening one check.
        self._send_timing: Timing | None = None
        self._layer = get_channel_layer(alias)
        # Where sends wait while the layer is unreachable (see channels_core.outage).
        self._outage = buffer_for(self._layer, settings.layer_outage, self.loop)
        self._dispatcher = None
        # An ASGI application served instead of the routing needs no routing to be set.
        if self.mode == "inprocess" and (
            asgi_app is None or settings.layer(alias).routing is not None
        ):
            from .checks import warn_unknown_channels
            from .dispatch import Dispatcher
            from .routing import Router

            router = Router.from_alias(alias)
            warn_unknown_channels(router, alias, registry)
            self._dispatcher = Dispatcher(router, alias)
        self._default: EmitTarget = (
            self._dispatcher.dispatch if self._dispatcher is not None else self._send_to_layer
        )
        # The channels an ASGI application takes, each to its protocol's adapter.
        self._targets: dict[str, EmitTarget] = {}
        if asgi_app is not None:
            for spec in protocols:
                if spec.asgi_adapter is not None:
                    target = spec.asgi_adapter(self, asgi_app)
                    self._targets.update(dict.fromkeys(spec.emits, target))
        self._receivers: dict[str, asyncio.Task] = {}
        self._closed_replies: dict[str, asyncio.Future] = {}
        # Work in flight: held sections, which drain() waits for (with the consumers).
        self._in_flight = 0
        self._held = _Held(self)
        self._drained: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()
        # Coroutines spawn() was given that no task has started yet, and whether a task is
        # working through them.
        self._spawned: deque[Coroutine[Any, Any, Any]] = deque()
        self._spawn_running = False

    # Reply channels -----------------------------------------------------------------------

    def open_reply(self, prefix: str, handler: ReplyHandler) -> str:
        """A fresh reply channel ``prefix.XXXX!YYYY`` served by ``handler(content)``.

        Sends to it from this process call the handler directly; sends that come through
        the layer (group sends, workers, other processes) are received by the host and
        handed to the same handler. A plain function runs on the host's loop and must not
        block; an ``async def`` handler is run with :meth:`spawn`, so several may run at
        once. Call :meth:`close_reply` when the connection is gone.
        """
        process_prefix = self._layer.process_prefix(prefix)
        if process_prefix not in self._receivers:
            self._receivers[process_prefix] = self.loop.create_task(
                local.deliver_from_layer(self._layer, process_prefix)
            )
        name = check_channel_name(process_prefix + random_suffix())
        if inspect.iscoroutinefunction(handler):
            coroutine_function = handler

            def handler(content: dict) -> None:
                self.spawn(coroutine_function(content))

        counters = self.counters
        count(counters._opened, prefix)
        # Observed: its replies are counted too, as they are delivered.
        replies = counters._replies if self._send_timing is not None else None
        local.bind(name, handler, self.loop, replies, prefix)
        return name

    def close_reply(self, name: str) -> None:
        """The connection of reply channel *name* is gone: later messages to it are dropped."""
        if local.is_bound(name):
            count(self.counters._closed, reply_family(name))
        local.unbind(name)
        closed = self._closed_replies.pop(name, None)
        if closed is not None and not closed.done():
            closed.set_result(None)

    def reply_closed(self, name: str) -> asyncio.Future:
        """A future done once :meth:`close_reply` closes *name* (at once if not open)."""
        closed = self._closed_replies.get(name)
        if closed is None:
            closed = self.loop.create_future()
            if local.is_bound(name):
                self._closed_replies[name] = closed
            else:
                closed.set_result(None)
        return closed

    # Events -------------------------------------------------------------------------------

    def emit(
        self, channel: str, content: dict, *, reraise: bool = False
    ) -> Coroutine[Any, Any, bool]:
        """Hand an event to its consumer; await the result.

        The result is True once the event was handled (in-process: the consumer ran and
        returned) or handed on (worker mode: the layer took it), and False when in-process
        dispatch found no route for it: the protocol then does what it does unrouted.
        Raises :class:`~channels_core.exceptions.EventRefused` when the layer refused the
        event. A consumer's exception is logged and swallowed, unless *reraise* is true:
        then it propagates, for protocols that answer a failure (HTTP 500, WebSocket 1011).
        """
        # One count and one dict lookup, then the target's own coroutine: no coroutine of ours
        # per event. The count is inline: a call of count() would double its cost.
        emitted = self._emitted
        try:
            emitted[channel] += 1
        except KeyError:
            emitted[channel] = 1
        return self._targets.get(channel, self._default)(channel, content, reraise=reraise)

    def emit_nowait(self, channel: str, content: dict) -> None:
        """:meth:`emit` from a callback: run it as work in flight, log its failure."""
        self.spawn(self.emit(channel, content))

    async def request(
        self,
        channel: str,
        content: dict,
        *,
        reply_prefix: str,
        timeout: float,  # noqa: ASYNC109 - a deadline for the reply, not for the call
    ) -> dict:
        """Emit an event with a fresh reply channel and return its first reply.

        *content* gets ``reply_channel`` (under *reply_prefix*, ``"smtp.reply"``) set. The
        request is work in flight until the reply comes, so draining waits for it. Raises
        :class:`~channels_core.exceptions.EventRefused` when the layer refused the event,
        :class:`~channels_core.exceptions.NoRoute` when no consumer is routed for it
        in-process, :class:`~channels_core.exceptions.ReplyTimeout` when no reply came
        within *timeout* seconds, and a consumer's exception as it raised it.
        """
        answer = self.loop.create_future()

        def answered(reply: dict) -> None:
            if not answer.done():
                answer.set_result(reply)

        reply_channel = self.open_reply(reply_prefix, answered)
        # The emit runs beside the wait, so that the timeout also bounds a consumer that
        # hangs in-process, and a reply sent before the consumer returns is taken at once.
        emitted = self.loop.create_task(
            self.emit(channel, {**content, "reply_channel": reply_channel}, reraise=True)
        )
        retrieved = False
        try:
            with self.hold():
                try:
                    async with asyncio.timeout(timeout):
                        await asyncio.wait((answer, emitted), return_when=asyncio.FIRST_COMPLETED)
                        if not answer.done():
                            retrieved = True
                            if not emitted.result():  # raises what the emit or consumer raised
                                raise NoRoute(
                                    f"No consumer is routed for {channel!r}, so nothing can "
                                    f"answer it; add route({channel!r}, a_consumer) to the routing."
                                )
                            await answer
                except TimeoutError:
                    raise ReplyTimeout(
                        f"No reply to the {channel!r} event came on {reply_channel} within "
                        f"{timeout} s."
                    ) from None
                return answer.result()
        finally:
            self.close_reply(reply_channel)
            if not retrieved:
                # Answered (or timed out) while the consumer may still run: it goes on, and
                # what it raises is logged rather than lost.
                emitted.add_done_callback(_log_late_failure)

    async def _send_to_layer(self, channel: str, content: dict, *, reraise: bool = False) -> bool:
        await self.send(channel, content)
        return True

    # Channels through the layer -----------------------------------------------------------

    async def send(self, channel: str, content: dict) -> None:
        """Put *content* on *channel* through the layer, for whoever receives it.

        While the layer is unreachable, the send is held and sent, in order, when the layer
        is back (:mod:`channels_core.outage`): it returns as if sent. Raises
        :class:`~channels_core.exceptions.EventRefused` when the layer refused it (full), or
        when the outage outlasted ``CHANNELS["LAYER_OUTAGE"]`` or filled its buffer.
        """
        timing = self._send_timing
        if timing is not None:
            started = perf_counter()
        outage = self._outage
        try:
            if outage.on:
                await outage.send(channel, content)
            else:
                try:
                    await self._layer.send(channel, content)
                except LayerUnavailable as error:
                    outage.begin(channel, content, error)
        except (ChannelFull, LayerUnavailable) as error:
            count(self.counters._refused, channel)
            raise EventRefused(channel, error) from error
        finally:
            if timing is not None:
                timing.observe(perf_counter() - started)

    async def receive(self, channel: str) -> dict:
        """The next message on *channel* from the layer (for channels a protocol consumes,
        such as ``sms.send``); raises :class:`~channels_core.exceptions.LayerClosed` once the
        host has stopped."""
        content = await self._layer.receive(channel)
        count(self.counters._received, channel)
        return content

    # Work in flight -----------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Held sections (:meth:`hold`, :meth:`request`) and in-process consumers running."""
        consumers = self._dispatcher.in_flight if self._dispatcher is not None else 0
        return self._in_flight + consumers

    def hold(self) -> _Held:
        """Count the ``with`` block as work in flight, so draining waits for it.

        For work that must finish before the process exits: a reply still owed to a client
        (HTTP holds each request until its response is complete), a message accepted and
        not yet handed on. In-process consumers are counted without it.
        """
        return self._held

    def _done_one(self) -> None:
        self._in_flight -= 1
        if not self._in_flight and self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run *coroutine* on the loop as work in flight; log its failure.

        Callable from a Twisted callback or any code on the loop. Coroutines spawned
        together (the events of one socket read) share a task while they finish without
        waiting: a task per event costs more than the event's consumer. Each still runs in
        its own copy of the context, in order; the first that waits for something finishes
        in the task it started in and the rest go on in a new task, so none waits for
        another. Those still running when the host stops are cancelled, after the drain:
        draining waits for the consumers they run in-process, and for what they
        :meth:`hold`, but not for the rest (a connection's life, a timer).
        """
        self._spawned.append(coroutine)
        if not self._spawn_running:
            self._start_spawned()

    def _start_spawned(self) -> None:
        self._spawn_running = True
        task = self.loop.create_task(self._run_spawned())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_spawned(self) -> None:
        """Run the spawned coroutines in turn until one waits; see :meth:`spawn`."""
        queue = self._spawned
        while queue:
            coroutine = queue.popleft()
            # What a task of its own would give it: a copy of the context for its every step.
            context = contextvars.copy_context()
            try:
                waiting = context.run(coroutine.send, None)
            except StopIteration:
                continue
            except asyncio.CancelledError:
                # As a task of its own it would have ended cancelled, which nobody logs.
                continue
            except Exception:
                logger.exception("Emitting an event failed.")
                continue
            # It waits: the rest go on in a new task; this one stays with it to its end.
            if queue:
                self._start_spawned()
            else:
                self._spawn_running = False
            try:
                await _Resume(coroutine, context, waiting)
            except Exception:
                logger.exception("Emitting an event failed.")
            return
        self._spawn_running = False

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the drain's deadline
        """Set ``draining``; wait up to *timeout* seconds for the work in flight; True when
        none is left."""
        self.draining = True
        deadline = self.loop.time() + timeout
        if self._in_flight:
            if self._drained is None:
                self._drained = self.loop.create_future()
            done, _ = await asyncio.wait((self._drained,), timeout=timeout)
            if not done:
                return False
        # Sends held through a layer outage (the events of connections closing, too).
        if not await self._outage.drain(max(0.0, deadline - self.loop.time())):
            return False
        if self._dispatcher is not None:
            return await self._dispatcher.drain(max(0.0, deadline - self.loop.time()))
        return True

    async def cancel_work(self) -> None:
        """Cancel the work still in flight (after :meth:`drain` gave up, or to stop now)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Spawned but never started (their task was cancelled before its first step): close
        # them, as cancelling their own tasks would have.
        while self._spawned:
            self._spawned.popleft().close()
        self._spawn_running = False

    async def close(self) -> None:
        """Cancel the work in flight and stop taking replies from the layer.

        Sends still held through a layer outage are dropped, and logged as lost. The layer
        itself stays open: it is the process's, which the process closes.
        """
        await self.cancel_work()
        self._outage.close()
        for task in self._receivers.values():
            task.cancel()
        await asyncio.gather(*self._receivers.values(), return_exceptions=True)
        self._receivers.clear()
        if self._dispatcher is not None:
            self._dispatcher.close()
