"""A Gunicorn worker class: Gunicorn manages the processes, Channels serves in each of them.

::

    gunicorn -k channels_core.gunicorn.ChannelsWorker -w 4 -b 127.0.0.1:8000 \\
        --env DJANGO_SETTINGS_MODULE=my_project.settings \\
        'channels_core.application:ChannelsApplication()'

Each worker process sets Django up, installs Twisted's asyncio reactor and runs the
:class:`~channels_core.server.ProtocolServer` with the protocols of ``CHANNELS["PROTOCOLS"]``
(HTTP and WebSocket by default), the HTTP protocol accepting on the listening sockets the
arbiter bound (``-b``) instead of its own endpoints.

The application argument is loaded by Gunicorn (``module:attribute`` or
``module:factory(...)``): a :class:`~channels_core.application.ChannelsApplication` (or the
class itself) serves the routing of its alias, as ``channels serve`` does; any other ASGI
application is served as ``channels serve module:app`` serves it.

Signals: SIGTERM (and SIGINT) drain as under ``channels serve``, within Gunicorn's
``--graceful-timeout`` less one second, then the worker exits 0; SIGQUIT stops at once (the
arbiter's quick shutdown); SIGUSR1 reopens the log files; the arbiter's SIGHUP starts new
workers and sends the old ones SIGTERM. The worker notifies the arbiter from its event loop
every second, so a loop that hangs for ``--timeout`` seconds gets the worker replaced, and
drains when the arbiter is gone. A configuration error stops it with one sentence in the log
and Gunicorn's "worker failed to boot" status, so the arbiter stops instead of restarting it
forever. ``--max-requests`` is not honoured (a warning says so).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from gunicorn.workers.base import Worker

from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .server import ProtocolServer

logger = logging.getLogger(__name__)

#: How often, in seconds, the event loop tells the arbiter the worker is alive (at most).
HEARTBEAT_INTERVAL = 1.0


def _on_gunicorn_sockets(sockets: list[Any], backlog: int) -> dict[str, Any]:
    """The HTTP protocol's options that make it accept on Gunicorn's *sockets*: ``fd:``
    endpoints, which the stream listener adopts (keeping their backlog and Unix mode, and a
    Unix socket's path when it stops) instead of binding its own."""
    endpoints = [f"fd:fileno={sock.fileno()}:backlog={backlog}" for sock in sockets]
    return {"endpoint": endpoints, "port": None, "unix_socket": None, "fd": None}


class ChannelsWorker(Worker):
    """A Gunicorn worker running Channels' protocol server on the arbiter's sockets.

    ``gunicorn -k channels_core.gunicorn.ChannelsWorker ... APP``, where *APP* names a
    :class:`~channels_core.application.ChannelsApplication` (the routing of its alias) or any
    ASGI 3 application. See the module's documentation for signals and heartbeats.
    """

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """Warn, in the arbiter, about Gunicorn settings this worker does not honour."""
        if cfg.max_requests > 0:
            log.warning(
                "ChannelsWorker ignores --max-requests %d: its connections are long-lived "
                "and it does not count requests. Replace the workers with SIGHUP instead.",
                cfg.max_requests,
            )

    def load_wsgi(self) -> None:
        """Set Django up, load the application and check the settings before booting.

        Gunicorn calls this in the worker before it counts as booted, so a configuration
        error here ends Gunicorn rather than restarting the worker in a loop.
        """
        from .application import ChannelsApplication
        from .cli import setup_django
        from .layers import get_channel_layer
        from .plugins import get_registry
        from .settings import get_settings

        try:
            setup_django(None, None)
            self._route_logging()
            if self.cfg.is_ssl:
                raise ImproperlyConfigured(
                    "ChannelsWorker does not serve TLS from Gunicorn's --certfile and "
                    "--keyfile; terminate TLS at a proxy, or run channels serve with an ssl: "
                    "endpoint."
                )
            target = self.app.wsgi()
            if isinstance(target, type) and issubclass(target, ChannelsApplication):
                target = target()
            self.wsgi = target
            if isinstance(target, ChannelsApplication):
                self.alias, self.asgi_app = target.alias, None
            else:
                self.alias, self.asgi_app = "default", target
            self.settings = get_settings()
            self.registry = get_registry()
            layer = get_channel_layer(self.alias)
            if self.cfg.workers > 1 and not layer.cross_process:
                logger.warning(
                    "The layer %r (%s) lives inside one process: group sends from this worker "
                    "do not reach the connections of the other %d. Use channels-ipc (one "
                    "machine) or channels-redis (several).",
                    self.alias,
                    type(layer).__name__,
                    self.cfg.workers - 1,
                )
            specs = self.registry.enabled_protocols(self.settings.protocols)
            names = [spec.name for spec in specs]
            if "http" not in names:
                raise ImproperlyConfigured(
                    "ChannelsWorker serves Gunicorn's sockets with the 'http' protocol, which "
                    f"CHANNELS['PROTOCOLS'] does not enable (it enables {names}); add 'http'."
                )
            self.protocols = specs
            self.options = {"http": _on_gunicorn_sockets(self.sockets, self.cfg.backlog)}
        except ImproperlyConfigured as error:
            self._refuse(error)

    def _route_logging(self) -> None:
        """Send Channels' logs to Gunicorn's error log, unless the project set up logging."""
        from .cli import configure_logging

        root = logging.getLogger()
        error_log = getattr(self.log, "error_log", None)
        if not root.handlers and error_log is not None:
            for handler in error_log.handlers:
                root.addHandler(handler)
            root.setLevel(error_log.level)
        configure_logging(2 if root.getEffectiveLevel() <= logging.DEBUG else 1)

    def _refuse(self, error: ImproperlyConfigured) -> NoReturn:
        """Log *error* and exit with the status that makes the arbiter stop."""
        from gunicorn.arbiter import Arbiter

        self.log.error("%s", error)
        sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def run(self) -> None:
        """Serve until a signal stops the worker (called by Gunicorn once booted)."""
        from .server import ProtocolServer, install_reactor, log_twisted_to_stdlib, new_event_loop

        drain_timeout = max(float(self.cfg.graceful_timeout) - 1.0, 0.0)
        try:
            loop = new_event_loop()
            reactor = install_reactor(loop)
            log_twisted_to_stdlib()
            server = ProtocolServer(
                self.settings,
                self.registry,
                self.protocols,
                options=self.options,
                alias=self.alias,
                reactor=reactor,
                loop=loop,
                drain_timeout=drain_timeout,
                asgi_app=self.asgi_app,
            )
            # The arbiter sends SIGUSR1 to have the log files reopened, not to restart.
            server.restart_signal = None
            loop.add_signal_handler(signal.SIGQUIT, self._quit)
            loop.add_signal_handler(signal.SIGUSR1, self._reopen_logs)
            # The loop keeps only a weak reference to its tasks; this list keeps it alive.
            main_task: list[asyncio.Task] = []
            reactor.callWhenRunning(lambda: main_task.append(loop.create_task(self._serve(server))))
            reactor.run(installSignalHandlers=False)
            if server.error is not None:
                raise server.error
        except ImproperlyConfigured as error:
            self._refuse(error)

    async def _serve(self, server: ProtocolServer) -> None:
        """Run the server (it drains on SIGTERM and SIGINT) with the heartbeat beside it."""
        heartbeat = asyncio.ensure_future(self._heartbeat(server))
        try:
            await server.serve()
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, server: ProtocolServer) -> None:
        """Tell the arbiter the loop is alive; drain when it is gone or asked us to stop.

        ``alive`` turns False on a SIGTERM that came before the server took the signal over,
        and on a code change under ``--reload``.
        """
        interval = min(HEARTBEAT_INTERVAL, self.timeout) if self.timeout > 0 else HEARTBEAT_INTERVAL
        stopping = False
        while True:
            self.notify()
            if not stopping and (not self.alive or os.getppid() != self.ppid):
                stopping = True
                if self.alive:
                    logger.info("Gunicorn's arbiter is gone; stopping %s.", self)
                server.request_stop()
            await asyncio.sleep(interval)

    def _reopen_logs(self) -> None:
        """SIGUSR1: reopen the log files (after they were rotated), as Gunicorn's workers do."""
        self.log.reopen_files()
        logger.info("Reopened the log files.")

    def _quit(self) -> None:
        """SIGQUIT, the arbiter's quick shutdown: exit now, without draining."""
        logger.info("Quick shutdown: closing every connection without draining.")
        self.handle_quit(signal.SIGQUIT, None)
