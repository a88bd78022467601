"""The protocol server: one Twisted reactor on asyncio hosting every enabled protocol.

``channels serve`` calls :func:`run_server`, which installs Twisted's asyncio reactor on a
fresh event loop (uvloop's when installed), builds a :class:`ProtocolServer` and runs it until
SIGTERM or SIGINT. The reactor can be installed once per process and must be installed before
anything imports ``twisted.internet.reactor``, so this happens at the start of ``channels
serve`` only, never when ``channels_core`` is imported.

A protocol plugin talks to the server only through the host contract of
:class:`~channels_core.host.Host` (reply channels, emit, request, spawn, work in flight), plus
the server's ``reactor``, :meth:`~ProtocolServer.option`,
:meth:`~ProtocolServer.upgrade_handler`, :meth:`~ProtocolServer.alpn_protocols`,
:meth:`~ProtocolServer.connection_handler` and :meth:`~ProtocolServer.write_flow`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured, PluginError
from .host import DEFAULT_DRAIN_TIMEOUT, Host
from .layers import DEFAULT_CHANNEL_LAYER, get_channel_layer, require_cross_process
from .options import resolve_options
from .supervisor import child_started, process_index, tell_ready

if TYPE_CHECKING:
    from .flow import WriteFlow
    from .listeners import Listener
    from .plugins import Registry
    from .protocols import ConnectionHandler, ProtocolSpec, UpgradeHandler
    from .settings import ChannelsSettings

logger = logging.getLogger(__name__)


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


class ProtocolServer(Host):
    """The running ``channels serve`` process: a :class:`~channels_core.host.Host` with
    listeners, a Twisted reactor, the protocols' options and draining on SIGTERM.

    Plugins read ``reactor`` (to build Twisted listeners and timers), :meth:`option` and
    :meth:`upgrade_handler`, besides what every host offers. ``kind`` is ``"server"`` (a
    worker's is ``"worker"``) for the lifecycle hooks. Without *loop* it must be built inside
    the running event loop. :func:`run_server` builds it.
    """

    kind = "server"
    #: The signal that drains for a restart (WebSockets close with 1012); None for none, as
    #: under Gunicorn, whose arbiter sends SIGUSR1 to have log files reopened.
    restart_signal: signal.Signals | None = signal.SIGUSR1

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
        mode_reason: str | None = None,
    ) -> None:
        super().__init__(
            settings,
            registry,
            protocols,
            alias=alias,
            loop=loop,
            drain_timeout=drain_timeout,
            asgi_app=asgi_app,
            mode=mode,
        )
        # Why the mode is what it is, logged at start-up (channels serve says).
        self.mode_reason = mode_reason
        self.protocols = protocols
        self.options = resolve_options(protocols, settings, options)
        self.reactor = reactor
        self._upgrades = {
            spec.upgrade.lower(): spec.accept_upgrade for spec in protocols if spec.upgrade
        }
        # Protocols that take whole connections: by ALPN id, and by the preface bytes.
        self._by_alpn = {spec.alpn: spec.accept_connection for spec in protocols if spec.alpn}
        self._by_preface = [
            (spec.preface, spec.accept_connection) for spec in protocols if spec.preface
        ]
        self.listeners: list[Listener] = []
        self.error: BaseException | None = None
        self._stop_requested = asyncio.Event()

    def option(self, protocol: str, name: str) -> Any:
        """The value of option *name* of *protocol* (default, settings, then command line),
        checked against its declaration."""
        try:
            return self.options[protocol][name]
        except KeyError:
            known = sorted(self.options.get(protocol, {}))
            raise PluginError(
                f"The protocol {protocol!r} asked for the option {name!r}, which it does not "
                f"declare (declared: {known}); add an Option to its ProtocolSpec."
            ) from None

    def write_flow(
        self,
        transport: Any,
        reply_channel: str,
        overflow: Callable[[], None],
        droppable: Callable[[dict], bool] | None = None,
        describe: str = "a connection",
    ) -> WriteFlow:
        """Watch the outgoing buffer of a stream connection: see :mod:`channels_core.flow`.

        Call it once the connection's reply channel is open, write with the returned
        :class:`~channels_core.flow.WriteFlow`'s ``write``, and call its ``detach`` when
        handing the transport to another protocol. *overflow* closes the connection when it
        stays over ``CHANNELS["WRITE_BUFFER"]["limit"]``; *droppable* says which messages
        through the layer may be dropped while the client does not read.
        """
        from .flow import WriteFlow

        limits = self.settings.write_buffer
        return WriteFlow(self, transport, reply_channel, limits, overflow, droppable, describe)

    def upgrade_handler(self, token: str) -> UpgradeHandler | None:
        """The handler of the enabled protocol that takes HTTP ``Upgrade: token``, or None."""
        return self._upgrades.get(token.lower())

    def alpn_protocols(self, *own: str) -> list[str]:
        """The ALPN ids a TLS listener offers: those of the enabled protocols that take
        connections (``h2``), preferred, then the listener's *own* (``http/1.1``)."""
        return [*self._by_alpn, *(name for name in own if name not in self._by_alpn)]

    def connection_handler(
        self, negotiated: str | bytes | None = None, data: bytes = b""
    ) -> ConnectionHandler | None:
        """The handler of the enabled protocol that takes a connection whose TLS handshake
        *negotiated* that ALPN id, or whose first bytes *data* begin with its preface; None
        to serve it as the listener's own protocol (see :meth:`preface_pending`)."""
        if negotiated:
            if isinstance(negotiated, bytes):
                negotiated = negotiated.decode("ascii", "replace")
            handler = self._by_alpn.get(negotiated)
            if handler is not None:
                return handler
        for preface, handler in self._by_preface:
            if data.startswith(preface):
                return handler
        return None

    def preface_pending(self, data: bytes) -> bool:
        """True when *data*, the first bytes of a connection, are shorter than a registered
        preface and could still become it: wait for more before choosing a protocol."""
        return any(
            len(data) < len(preface) and preface.startswith(data) for preface, _ in self._by_preface
        )

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open every enabled protocol's listeners, log them, call ``channels_startup``.

        Worker mode on a layer that lives in this process only (``memory``) raises
        :class:`ImproperlyConfigured` first: no worker could receive its events.
        """
        if self.mode_reason is not None:
            logger.info("Serving in %s mode: %s.", self.mode, self.mode_reason)
        if self.mode == "worker":
            require_cross_process(
                self._layer,
                "Worker mode",
                "channels worker processes receive the events",
                "run the consumers in this process (--mode inprocess, CHANNELS['MODE'] = "
                "'inprocess')",
            )
        index = process_index()
        for spec in self.protocols:
            for listener in spec.listeners(self):
                if index and not listener.in_every_process:
                    logger.info(
                        "%s: %s runs in the first process only.", spec.name, listener.describe()
                    )
                    continue
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
        tell_ready()

    def request_restart(self) -> None:
        """Begin draining for a restart (SIGUSR1): WebSockets close with 1012, not 1001."""
        self.restarting = True
        self.request_stop()

    def request_stop(self) -> None:
        """Begin draining (SIGTERM and SIGINT call this)."""
        if self._stop_requested.is_set():
            logger.info("Already draining; waiting for work in flight to finish.")
            return
        logger.info("Draining: no new connections, finishing the work in flight.")
        self._stop_requested.set()

    async def stop(self) -> None:
        """Stop listening, let the work in flight finish (within the drain timeout), call
        ``channels_shutdown``, close."""
        self.draining = True
        for listener in reversed(self.listeners):
            try:
                await listener.stop(self)
            except Exception:
                logger.exception("Closing %s failed.", listener.describe())
        self.listeners.clear()
        if not await self.drain(self.drain_timeout):
            logger.warning(
                "%d consumers were still running after %s s; stopping anyway.",
                self.in_flight,
                self.drain_timeout,
            )
        await self.cancel_work()
        self.registry.hook.channels_shutdown(server=self)
        # What the shutdown hooks started (WebSockets closing with 1001, whose disconnect
        # consumers leave their groups) is work in flight too: it ends before the layer does.
        if self.in_flight and not await self.drain(self.drain_timeout):
            logger.warning(
                "%d consumers were still running %s s after the shutdown; stopping anyway.",
                self.in_flight,
                self.drain_timeout,
            )
        await self.close()
        await self._layer.close()
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
            if self.restart_signal is not None:
                self.loop.add_signal_handler(self.restart_signal, self.request_restart)
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
            if handle_signals and self.restart_signal is not None:
                self.loop.remove_signal_handler(self.restart_signal)
            for signum in (signal.SIGTERM, signal.SIGINT) if handle_signals else ():
                self.loop.remove_signal_handler(signum)
                # The work is done and the process is exiting: a repeated signal (a supervisor
                # sending SIGTERM again) must not turn the clean exit into a kill.
                signal.signal(signum, signal.SIG_IGN)
            self.reactor.stop()


def log_twisted_to_stdlib() -> None:
    """Send Twisted's log events (unhandled errors in protocols) to :mod:`logging`."""
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo(
        [STDLibLogObserver(name="twisted")], redirectStandardIO=False, discardBuffer=True
    )


def _enabled(
    protocols: Iterable[str] | None, registry: Registry | None = None
) -> tuple[ChannelsSettings, Registry, list[ProtocolSpec]]:
    """The settings, the registry and the specs of the protocols to serve: *protocols* by
    name, else ``CHANNELS["PROTOCOLS"]``, else the default ones."""
    from .plugins import get_registry
    from .settings import get_settings

    settings = get_settings()
    registry = registry or get_registry()
    names = list(protocols) if protocols else settings.protocols
    return settings, registry, registry.enabled_protocols(names)


def run_server(
    protocols: Iterable[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    alias: str = DEFAULT_CHANNEL_LAYER,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    registry: Registry | None = None,
    asgi_app: Any = None,
    mode: str | None = None,
    mode_reason: str | None = None,
) -> int:
    """Run the protocol server in this process until SIGTERM or SIGINT; return 0.

    :param protocols: the protocols to serve, by name; default ``CHANNELS["PROTOCOLS"]``, or
        ``http`` and ``websocket`` (those of them installed) when it is not set.
    :param options: command-line option values by protocol, over ``CHANNELS["OPTIONS"]``.
    :param alias: the ``CHANNEL_LAYERS`` alias whose layer and routing the server uses.
    :param drain_timeout: how long to let running consumers finish on shut-down, in seconds.
    :param registry: the plugin registry; the process's :func:`get_registry` by default.
    :param asgi_app: an ASGI application for the HTTP protocol to serve instead of the routing.
    :param mode: ``"inprocess"`` or ``"worker"``, over ``CHANNELS["MODE"]`` (``--mode``).
    :param mode_reason: why the mode is what it is, logged when the server starts.

    Installs the asyncio reactor, so it can run once per process. Raises
    :class:`ImproperlyConfigured` for bad settings, options or endpoints, and for worker mode
    on a layer that lives in one process.
    """
    settings, registry, specs = _enabled(protocols, registry)
    child_started()
    loop = new_event_loop()
    reactor = install_reactor(loop)
    logger.debug("Running the asyncio reactor on %s.", type(loop).__name__)
    log_twisted_to_stdlib()
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
        mode_reason=mode_reason,
    )
    # The loop keeps only a weak reference to its tasks; this list keeps the main one alive.
    main_task: list[asyncio.Task] = []
    reactor.callWhenRunning(lambda: main_task.append(loop.create_task(server.serve())))
    reactor.run(installSignalHandlers=False)
    if server.error is not None:
        raise server.error
    return 0


def run_processes(
    count: int,
    command_line: list[str],
    protocols: Iterable[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    alias: str = DEFAULT_CHANNEL_LAYER,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    asgi_app: Any = None,
    mode: str | None = None,
    reuse_port: bool | None = None,
) -> int:
    """``channels serve --processes N``: bind the listeners once, supervise N children.

    With *reuse_port* (None: ``CHANNELS['REUSE_PORT']``), every TCP endpoint and UDP address
    gets a ``SO_REUSEPORT`` socket per child instead of one socket they share.

    Checks what one process would (settings, options, routing, endpoints), binds every
    stream and datagram listener of the enabled protocols, then runs a
    :class:`~channels_core.supervisor.Supervisor` whose children run *command_line* (the
    ``channels`` arguments of this process) and adopt those sockets. Returns 0 once SIGTERM
    or SIGINT has drained every child. Raises :class:`ImproperlyConfigured` when the layer
    cannot carry groups and replies between processes (the memory layer).
    """
    from .supervisor import Supervisor, bind_listeners, describe_sharing

    settings, registry, specs = _enabled(protocols)
    require_cross_process(
        get_channel_layer(alias),
        f"--processes {count}",
        "groups and reply channels reach every process",
        "one process",
    )
    loop = new_event_loop()
    try:
        server = ProtocolServer(
            settings,
            registry,
            specs,
            options=options,
            alias=alias,
            loop=loop,
            drain_timeout=drain_timeout,
            asgi_app=asgi_app,
            mode=mode,
        )
        listeners = [(spec, listener) for spec in specs for listener in spec.listeners(server)]
        if reuse_port is None:
            reuse_port = settings.reuse_port
        sockets = bind_listeners(
            [listener for _, listener in listeners], count, reuse_port, settings.backlog
        )
    finally:
        loop.close()
    for spec, listener in listeners:
        logger.info("%s: %s", spec.name, describe_sharing(listener, count, reuse_port))
    return Supervisor(count, command_line, sockets, drain_timeout).run()
