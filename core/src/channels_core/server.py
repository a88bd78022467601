"""The protocol server: one Twisted reactor on asyncio hosting every enabled protocol.

``channels serve`` calls :func:`run_server`, which installs Twisted's asyncio reactor on a
fresh event loop (uvloop's when installed), builds a :class:`ProtocolServer` and runs it until
SIGTERM or SIGINT. The reactor can be installed once per process and must be installed before
anything imports ``twisted.internet.reactor``, so this happens at the start of ``channels
serve`` only, never when ``channels_core`` is imported.

A protocol plugin's adapter talks to the server through a few plain calls:
:meth:`ProtocolServer.new_reply_channel` and :meth:`~ProtocolServer.bind_reply` when a
connection opens, :meth:`~ProtocolServer.emit` (or :meth:`~ProtocolServer.emit_nowait` from a
Twisted callback) per event, :meth:`~ProtocolServer.unbind_reply` when it closes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import threading
from collections import deque
from collections.abc import Coroutine, Generator, Iterable
from typing import TYPE_CHECKING, Any

from . import local
from .exceptions import ImproperlyConfigured, PluginError
from .layers import DEFAULT_CHANNEL_LAYER, get_channel_layer
from .names import check_channel_name, random_suffix
from .settings import MODES

if TYPE_CHECKING:
    from .listeners import Listener
    from .plugins import Registry
    from .protocols import ProtocolSpec, UpgradeHandler
    from .settings import ChannelsSettings

logger = logging.getLogger(__name__)

DEFAULT_DRAIN_TIMEOUT = 10.0


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when uvloop is installed, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def install_reactor(loop: asyncio.AbstractEventLoop) -> Any:
    """Make *loop* the current loop and install Twisted's asyncio reactor on it.

    Raises :class:`ImproperlyConfigured` when another reactor is already installed (something
    imported ``twisted.internet.reactor`` first).
    """
    from twisted.internet import asyncioreactor
    from twisted.internet.error import ReactorAlreadyInstalledError

    asyncio.set_event_loop(loop)
    try:
        asyncioreactor.install(loop)
    except ReactorAlreadyInstalledError as error:
        raise ImproperlyConfigured(
            "A Twisted reactor is already installed in this process, so the asyncio reactor "
            "cannot be: do not import twisted.internet.reactor before the server starts."
        ) from error
    from twisted.internet import reactor

    return reactor


def resolve_options(
    protocols: Iterable[ProtocolSpec],
    settings: ChannelsSettings,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each protocol's options: defaults, then ``CHANNELS["OPTIONS"]``, then *overrides*.

    *overrides* come from the command line, already converted. An unknown key, in the settings
    or in *overrides*, and overrides for a protocol that is not enabled are errors.
    """
    protocols = list(protocols)
    overrides = overrides or {}
    enabled = {spec.name for spec in protocols}
    for name in overrides:
        if name not in enabled:
            raise ImproperlyConfigured(
                f"Options were given for the protocol {name!r}, which is not enabled (enabled: "
                f"{sorted(enabled)}); enable it with --protocol {name} or CHANNELS['PROTOCOLS']."
            )
    resolved = {}
    for spec in protocols:
        values = spec.option_defaults()
        for where, given in (
            (f"CHANNELS['OPTIONS'][{spec.name!r}]", settings.protocol_options(spec.name)),
            (f"The command-line options of {spec.name!r}", overrides.get(spec.name, {})),
        ):
            for key, value in given.items():
                if key not in values:
                    raise ImproperlyConfigured(
                        f"{where} has the unknown option {key!r}; the protocol {spec.name!r} "
                        f"takes {sorted(values) or 'no options'}."
                    )
                values[key] = value
        resolved[spec.name] = values
    return resolved


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


class ProtocolServer:
    """The running ``channels serve`` process: listeners, reply channels and dispatch.

    ``settings``, ``registry``, ``layer``, ``loop`` and ``reactor`` are what plugins read;
    ``kind`` is ``"server"`` (a worker's is ``"worker"``) for the lifecycle hooks. Without
    *loop* it must be built inside the running event loop. :func:`run_server` builds it.
    ``asgi_app`` is the ASGI application ``channels serve module:app`` named (or None), which
    the HTTP protocol serves instead of the routing. ``mode`` is ``"inprocess"`` (the server
    runs the consumers) or ``"worker"`` (every event goes on the layer for ``channels worker``
    processes); None takes ``CHANNELS["MODE"]``.
    """

    kind = "server"

    def __init__(
        self,
        settings: ChannelsSettings,
        registry: Registry,
        protocols: list[ProtocolSpec],
        options: dict[str, dict[str, Any]] | None = None,
        alias: str = DEFAULT_CHANNEL_LAYER,
        reactor: Any = None,
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
        self.mode = mode or settings.mode
        self.settings = settings
        self.asgi_app = asgi_app
        self.registry = registry
        self.protocols = protocols
        self.alias = alias
        self.options = resolve_options(protocols, settings, options)
        self.reactor = reactor
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.drain_timeout = drain_timeout
        self.layer = get_channel_layer(alias)
        self.dispatcher = None
        # An ASGI application served instead of the routing needs no routing to be set.
        if self.mode == "inprocess" and (
            asgi_app is None or settings.layer(alias).routing is not None
        ):
            from .dispatch import Dispatcher
            from .routing import Router

            self.dispatcher = Dispatcher(Router.from_alias(alias), alias)
        self.upgrades = {
            spec.upgrade.lower(): spec.accept_upgrade for spec in protocols if spec.upgrade
        }
        self.listeners: list[Listener] = []
        self.error: BaseException | None = None
        self._stop_requested = asyncio.Event()
        self._reply_tasks: dict[str, asyncio.Task] = {}
        self._emit_tasks: set[asyncio.Task] = set()
        # Coroutines spawn() was given that no task has started yet, and whether a task is
        # working through them.
        self._spawned: deque[Coroutine[Any, Any, Any]] = deque()
        self._spawn_running = False

    # What protocol adapters call ---------------------------------------------------------

    def option(self, protocol: str, name: str) -> Any:
        """The value of option *name* of *protocol* (default, settings, then command line)."""
        try:
            return self.options[protocol][name]
        except KeyError:
            known = sorted(self.options.get(protocol, {}))
            raise PluginError(
                f"The protocol {protocol!r} asked for the option {name!r}, which it does not "
                f"declare (declared: {known}); add an Option to its ProtocolSpec."
            ) from None

    def upgrade_handler(self, token: str) -> UpgradeHandler | None:
        """The handler of the enabled protocol that takes HTTP ``Upgrade: token``, or None."""
        return self.upgrades.get(token.lower())

    def new_reply_channel(self, prefix: str) -> str:
        """A fresh process-specific reply channel, ``prefix.XXXX!YYYY``, owned by this server.

        Messages that reach it through the layer (group sends, sends from other processes)
        are handed to the handler :meth:`bind_reply` binds to it.
        """
        process_prefix = self.layer.process_prefix(prefix)
        if process_prefix not in self._reply_tasks:
            self._reply_tasks[process_prefix] = self.loop.create_task(
                local.deliver_from_layer(self.layer, process_prefix)
            )
        return check_channel_name(process_prefix + random_suffix())

    def bind_reply(self, name: str, handler: local.Handler) -> None:
        """Serve sends to reply channel *name* with ``handler(content)`` on the server's loop."""
        local.bind(name, handler, self.loop)

    def unbind_reply(self, name: str) -> None:
        """The connection of *name* is gone: later messages for it are dropped."""
        local.unbind(name)

    def emit(self, channel: str, content: dict) -> Coroutine[Any, Any, bool]:
        """Hand an event to its consumer: in-process dispatch, or the layer in worker mode.

        Returns the coroutine to await: its result is False when in-process dispatch found
        no route for the event. In worker mode a full channel raises
        :class:`~channels_core.exceptions.ChannelFull` to the caller.
        """
        # The dispatcher's coroutine itself, not one awaiting it: a coroutine less per event.
        if self.dispatcher is not None:
            return self.dispatcher.dispatch(channel, content)
        return self._send_to_layer(channel, content)

    async def _send_to_layer(self, channel: str, content: dict) -> bool:
        await self.layer.send(channel, content)
        return True

    def emit_nowait(self, channel: str, content: dict) -> None:
        """:meth:`emit` from a Twisted callback: schedule it on the loop, log its failure."""
        self.spawn(self.emit(channel, content))

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run *coroutine* on the loop, from a Twisted callback; log its failure.

        For a protocol that awaits :meth:`emit` itself (to handle a full channel its own
        way). Coroutines spawned together (the events of one socket read) share a task while
        they finish without waiting: a task per event costs more than the event's consumer.
        Each still runs in its own copy of the context, in order; the first that waits for
        something finishes in the task it started in and the rest go on in a new task, so
        none waits for another. The tasks still running when the server has drained are
        cancelled.
        """
        self._spawned.append(coroutine)
        if not self._spawn_running:
            self._start_spawned()

    def _start_spawned(self) -> None:
        self._spawn_running = True
        task = self.loop.create_task(self._run_spawned())
        self._emit_tasks.add(task)
        task.add_done_callback(self._emit_tasks.discard)

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

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open every enabled protocol's listeners, log them, call ``channels_startup``."""
        for spec in self.protocols:
            for listener in spec.listeners(self):
                await listener.start(self)
                self.listeners.append(listener)
                logger.info("%s listening on %s", spec.name, listener.describe())
        self.registry.hook.channels_startup(server=self)
        logger.info(
            "Channels server ready: protocols %s, layer %r, %s mode.",
            ", ".join(spec.name for spec in self.protocols) or "none",
            self.alias,
            self.mode,
        )

    def request_stop(self) -> None:
        """Begin draining (SIGTERM and SIGINT call this)."""
        if self._stop_requested.is_set():
            logger.info("Already draining; waiting for work in flight to finish.")
            return
        logger.info("Draining: no new connections, finishing the work in flight.")
        self._stop_requested.set()

    async def stop(self) -> None:
        """Stop listening, let running consumers finish, call ``channels_shutdown``, close."""
        for listener in reversed(self.listeners):
            try:
                await listener.stop(self)
            except Exception:
                logger.exception("Closing %s failed.", listener.describe())
        self.listeners.clear()
        if self.dispatcher is not None and not await self.dispatcher.drain(self.drain_timeout):
            logger.warning(
                "%d consumers were still running after %s s; stopping anyway.",
                self.dispatcher.in_flight,
                self.drain_timeout,
            )
        for task in list(self._emit_tasks):
            task.cancel()
        # Spawned but never started (their task was cancelled before its first step): close
        # them, as cancelling their own tasks would have.
        while self._spawned:
            self._spawned.popleft().close()
        self.registry.hook.channels_shutdown(server=self)
        for task in self._reply_tasks.values():
            task.cancel()
        await asyncio.gather(*self._reply_tasks.values(), return_exceptions=True)
        self._reply_tasks.clear()
        if self.dispatcher is not None:
            self.dispatcher.close()
        await self.layer.close()
        logger.info("Channels server stopped.")

    async def serve(self) -> None:
        """Start, wait for a stop signal, drain, then stop the reactor.

        A start-up error is kept in ``error`` for :func:`run_server` to report.
        """
        # Only the main thread gets signals; ``manage.py runserver`` runs the server in
        # another thread under Django's autoreloader, which stops it by exiting the process.
        handle_signals = threading.current_thread() is threading.main_thread()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.loop.add_signal_handler(signum, self.request_stop)
        try:
            try:
                await self.start()
            except BaseException as error:
                self.error = error
            else:
                await self._stop_requested.wait()
            await self.stop()
        except BaseException as error:
            self.error = self.error or error
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT) if handle_signals else ():
                self.loop.remove_signal_handler(signum)
                # The work is done and the process is exiting: a repeated signal (a supervisor
                # sending SIGTERM again) must not turn the clean exit into a kill.
                signal.signal(signum, signal.SIG_IGN)
            self.reactor.stop()


def _log_twisted_to_stdlib() -> None:
    """Send Twisted's log events (unhandled errors in protocols) to :mod:`logging`."""
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo(
        [STDLibLogObserver(name="twisted")], redirectStandardIO=False, discardBuffer=True
    )


def run_server(
    protocols: Iterable[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    alias: str = DEFAULT_CHANNEL_LAYER,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    registry: Registry | None = None,
    asgi_app: Any = None,
    mode: str | None = None,
) -> int:
    """Run the protocol server in this process until SIGTERM or SIGINT; return 0.

    :param protocols: the protocols to serve, by name; default ``CHANNELS["PROTOCOLS"]``, or
        every installed protocol.
    :param options: command-line option values by protocol, over ``CHANNELS["OPTIONS"]``.
    :param alias: the ``CHANNEL_LAYERS`` alias whose layer and routing the server uses.
    :param drain_timeout: how long to let running consumers finish on shut-down, in seconds.
    :param registry: the plugin registry; the process's :func:`get_registry` by default.
    :param asgi_app: an ASGI application for the HTTP protocol to serve instead of the routing.
    :param mode: ``"inprocess"`` or ``"worker"``, over ``CHANNELS["MODE"]`` (``--mode``).

    Installs the asyncio reactor, so it can run once per process. Raises
    :class:`ImproperlyConfigured` for bad settings, options or endpoints.
    """
    from .plugins import get_registry
    from .settings import get_settings

    settings = get_settings()
    registry = registry or get_registry()
    names = list(protocols) if protocols else settings.protocols
    specs = registry.enabled_protocols(names)
    loop = new_event_loop()
    reactor = install_reactor(loop)
    logger.debug("Running the asyncio reactor on %s.", type(loop).__name__)
    _log_twisted_to_stdlib()
    server = ProtocolServer(
        settings,
        registry,
        specs,
        options=options,
        alias=alias,
        reactor=reactor,
        loop=loop,
        drain_timeout=drain_timeout,
        asgi_app=asgi_app,
        mode=mode,
    )
    # The loop keeps only a weak reference to its tasks; this list keeps the main one alive.
    main_task: list[asyncio.Task] = []
    reactor.callWhenRunning(lambda: main_task.append(loop.create_task(server.serve())))
    reactor.run(installSignalHandlers=False)
    if server.error is not None:
        raise server.error
    return 0
