"""Listeners: what a protocol plugin opens in the ``channels serve`` process.

A protocol's ``listeners(server)`` factory returns some of these; the
:class:`~channels_core.server.ProtocolServer` starts each one when it starts and stops each
one when it drains (before the work in flight is waited for):

:class:`StreamListener`
    a Twisted server endpoint string (``tcp:8000:interface=127.0.0.1``, ``ssl:…``,
    ``unix:…``, ``fd:…``) and a protocol factory: HTTP, WebSocket, line protocols.
:class:`DatagramListener`
    a UDP port and a :class:`twisted.internet.protocol.DatagramProtocol`.
:class:`SerialListener`
    a serial device and a protocol (needs ``pyserial``): GSM modems for SMS.
:class:`ServiceListener`
    two coroutine functions run on the event loop, for what has no Twisted transport
    (WebRTC peer connections on aiortc, an outbound client that connects and reconnects).
:class:`TaskListener`
    one coroutine function run as a task from start until the server drains: an event
    source without a socket (a timer, a file watcher, a poll of another service).

``address`` is what is actually bound once started (``(host, port)`` with the real port when
the endpoint asked for port 0, a socket path, a device), or None for what binds nothing;
``describe()`` says the same in words, for the start-up log.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.error import CannotListenError

from .exceptions import ImproperlyConfigured
from .supervisor import datagram_key, endpoint_parts, inherited_socket, stream_key

logger = logging.getLogger(__name__)

# The endpoint types whose Twisted parser takes ``backlog=``; ``fd:`` sockets are adopted.
BACKLOG_KINDS = ("tcp", "tcp6", "ssl", "unix")

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort
    from twisted.internet.protocol import DatagramProtocol, Factory, Protocol

    from .server import ProtocolServer


def _bound(port: IListeningPort) -> tuple[str, int] | str:
    """The bound address of a listening port: ``(host, port)`` or a socket path."""
    host = port.getHost()
    if hasattr(host, "port"):
        return (host.host, host.port)
    name = getattr(host, "name", None)
    return name.decode() if isinstance(name, bytes) else str(name)


def _family(fd: int) -> socket.AddressFamily:
    """The address family of the socket *fd* (left open)."""
    probe = socket.socket(fileno=os.dup(fd))
    try:
        return probe.family
    finally:
        probe.close()


def _address(port: IListeningPort) -> str:
    """The bound address of a listening port, as ``host:port`` or a socket path."""
    bound = _bound(port)
    return bound if isinstance(bound, str) else f"{bound[0]}:{bound[1]}"


async def _wait(server: ProtocolServer, deferred: defer.Deferred) -> Any:
    """Await a Twisted Deferred on the server's event loop."""
    return await deferred.asFuture(server.loop)


class Listener(abc.ABC):
    """Something a protocol opens when the server starts and closes when it drains.

    ``in_every_process``: with ``channels serve --processes N``, whether every process runs
    it (sockets are shared, services and tasks run in each) or only the first one (what one
    process alone can hold, such as a serial device).
    """

    in_every_process = True

    @abc.abstractmethod
    async def start(self, server: ProtocolServer) -> None:
        """Open the listener; raise ImproperlyConfigured when it cannot be opened."""

    @abc.abstractmethod
    async def stop(self, server: ProtocolServer) -> None:
        """Stop accepting new connections or packets."""

    @abc.abstractmethod
    def describe(self) -> str:
        """What is listening, with its real address once started."""

    @property
    def address(self) -> tuple[str, int] | str | None:
        """What is bound once started: ``(host, port)``, a path or a device; None if nothing."""
        return None


class PortListener(Listener):
    """A listener holding a Twisted listening port; stopping it stops listening."""

    port: Any = None

    @property
    def address(self) -> tuple[str, int] | str | None:
        """``(host, port)`` or the socket path bound, once started; None before."""
        return _bound(self.port) if self.port is not None else None

    async def stop(self, server: ProtocolServer) -> None:
        """Stop listening; connections already open stay open."""
        if self.port is not None:
            await _wait(server, defer.maybeDeferred(self.port.stopListening))
            self.port = None


class StreamListener(PortListener):
    """A stream server on a Twisted endpoint string, serving connections with *factory*."""

    def __init__(self, endpoint: str, factory: Factory, alpn: Sequence[str] = ()) -> None:
        self.endpoint = endpoint
        self.factory = factory
        #: The ALPN protocol ids a TLS (``ssl:``) endpoint offers, preferred first (an HTTP
        #: listener passes ``server.alpn_protocols("http/1.1")``); none: no ALPN.
        self.alpn = tuple(alpn)
        self.port: IListeningPort | None = None
        # An adopted Unix socket: closing its port would remove the path others listen on.
        self._unlinks_path = False

    async def start(self, server: ProtocolServer) -> None:
        """Parse the endpoint and listen on it (or adopt the socket it names, or the one the
        parent of ``--processes`` bound for it), with the endpoint's ``backlog=``, else
        ``CHANNELS["BACKLOG"]``."""
        kind, positional, keywords = endpoint_parts(self.endpoint)
        backlog = int(keywords.get("backlog", server.settings.backlog))
        # channels serve --processes: the parent bound it; every child accepts on it.
        inherited = inherited_socket(stream_key(self.endpoint))
        if inherited is None and kind == "fd":
            inherited = self._descriptor(
                keywords.get("fileno", positional[0] if positional else "")
            )
        if inherited is not None:
            factory = self.factory
            if kind == "ssl":  # the parent bound the TCP socket; TLS is this process's
                from twisted.protocols.tls import TLSMemoryBIOFactory

                context = self._tls_options(self.parse(server.reactor))
                factory = TLSMemoryBIOFactory(context, False, factory)
            self._adopt(server, inherited, backlog, factory)
            return
        endpoint_string = self.endpoint
        if "backlog" not in keywords and kind in BACKLOG_KINDS:
            endpoint_string += f":backlog={backlog}"
        endpoint = self.parse(server.reactor, endpoint_string)
        if kind == "ssl":
            self._tls_options(endpoint)
        try:
            self.port = await _wait(server, endpoint.listen(self.factory))
        except CannotListenError as error:
            raise ImproperlyConfigured(
                f"Cannot listen on {self.endpoint!r}: {error.socketError}. Pick another port "
                "or address, or stop the process that holds it."
            ) from error

    def parse(self, reactor: Any, endpoint: str | None = None) -> Any:
        """The Twisted endpoint of :attr:`endpoint` (or of *endpoint*, the same with more
        arguments), or :class:`ImproperlyConfigured` with one sentence (a bad endpoint
        string; TLS not installed; a key or certificate that cannot be read or that OpenSSL
        refuses). Reads a TLS endpoint's files, but binds nothing."""
        from twisted.internet.endpoints import serverFromString

        try:
            return serverFromString(reactor, endpoint or self.endpoint)
        except (ValueError, TypeError, KeyError) as error:
            raise ImproperlyConfigured(
                f"The endpoint {self.endpoint!r} is not a valid Twisted endpoint string "
                f"({error}); use one such as 'tcp:8000:interface=127.0.0.1' or "
                "'unix:/run/channels.sock'."
            ) from error
        except ImportError as error:
            # Twisted's ssl: endpoints need pyOpenSSL, which is an extra.
            raise ImproperlyConfigured(
                f"The endpoint {self.endpoint!r} needs TLS support, which is not installed "
                f"({error}); pip install 'channels-core[tls]'."
            ) from error
        except OSError as error:
            raise ImproperlyConfigured(
                f"The TLS endpoint {self.endpoint!r} names {error.filename!r}, which cannot "
                f"be read ({error.strerror}); give privateKey= (and certKey=, when the "
                "certificate is in another file) the paths of readable PEM files."
            ) from error
        except Exception as error:
            # pyOpenSSL's own errors (OpenSSL.crypto.Error, OpenSSL.SSL.Error) for a file that
            # is not a PEM key or certificate, or a key that does not match its certificate.
            if not type(error).__module__.startswith("OpenSSL"):
                raise
            raise ImproperlyConfigured(
                f"The TLS endpoint {self.endpoint!r} names a private key or certificate that "
                f"OpenSSL refuses ({error}); give privateKey= and certKey= a PEM private key "
                "and the PEM certificate that matches it."
            ) from error

    def _tls_options(self, endpoint: Any) -> Any:
        """The TLS options (a ``CertificateOptions``) of a parsed ``ssl:`` endpoint, offering
        :attr:`alpn` in the handshake."""
        # Twisted's ssl: endpoint string has no ALPN argument; the options it built are
        # told before their first context is made, which is when they read the list.
        options = endpoint._sslContextFactory
        if self.alpn:
            options._acceptableProtocols = [name.encode("ascii") for name in self.alpn]
        return options

    def _descriptor(self, fileno: str) -> int:
        """The listening socket an ``fd:fileno=N`` endpoint names, checked."""
        try:
            fd = int(fileno)
            os.fstat(fd)
        except (ValueError, OSError) as error:
            raise ImproperlyConfigured(
                f"The endpoint {self.endpoint!r} names no open file descriptor ({error}); "
                "give fd:fileno=N the number of a listening socket this process inherited."
            ) from error
        return fd

    def _adopt(self, server: ProtocolServer, fd: int, backlog: int, factory: Factory) -> None:
        """Accept on the listening socket *fd* with *factory*, as it was bound (a Unix
        socket's mode kept), queueing up to *backlog* connections."""
        family = _family(fd)
        path = mode = None
        if family == socket.AF_UNIX:
            probe = socket.socket(fileno=os.dup(fd))
            path = probe.getsockname()
            probe.close()
            mode = os.stat(path).st_mode & 0o777 if isinstance(path, str) and path else None
        self.port = server.reactor.adoptStreamPort(fd, family, factory)
        # Twisted listens again with its own backlog, and opens a Unix socket to everyone.
        self.port.socket.listen(backlog)
        if mode is not None:
            os.chmod(path, mode)
        self._unlinks_path = family == socket.AF_UNIX

    async def stop(self, server: ProtocolServer) -> None:
        """Stop listening; connections already open stay open.

        An adopted Unix socket only stops accepting: closing it would remove its path, which
        the other processes sharing it (and their replacements) still listen on.
        """
        if self.port is not None and self._unlinks_path:
            self.port.stopReading()
            self.port = None
            return
        await super().stop(server)

    def describe(self) -> str:
        """``endpoint → host:port`` once started."""
        if self.port is None:
            return self.endpoint
        return f"{self.endpoint} → {_address(self.port)}"


class DatagramListener(PortListener):
    """A UDP port served by a :class:`~twisted.internet.protocol.DatagramProtocol`.

    ``max_packet_size`` is the receive buffer of each read: a longer datagram arrives cut to
    this many bytes, so a protocol that must tell oversized datagrams apart reads one byte
    more than it accepts.
    """

    def __init__(
        self,
        interface: str,
        port: int,
        protocol: DatagramProtocol,
        max_packet_size: int = 8192,
    ) -> None:
        self.interface = interface
        self.requested_port = port
        self.protocol = protocol
        self.max_packet_size = max_packet_size
        self.port: IListeningPort | None = None

    async def start(self, server: ProtocolServer) -> None:
        """Bind the UDP port (or adopt the one the parent of the processes bound)."""
        inherited = inherited_socket(datagram_key(self.interface, self.requested_port))
        if inherited is not None:
            self.port = server.reactor.adoptDatagramPort(
                inherited, _family(inherited), self.protocol, self.max_packet_size
            )
            return
        try:
            self.port = server.reactor.listenUDP(
                self.requested_port,
                self.protocol,
                interface=self.interface,
                maxPacketSize=self.max_packet_size,
            )
        except CannotListenError as error:
            raise ImproperlyConfigured(
                f"Cannot listen for UDP on {self.interface}:{self.requested_port}: "
                f"{error.socketError}. Pick another port or address."
            ) from error

    def describe(self) -> str:
        """``udp:port:interface=… → host:port`` once started."""
        requested = f"udp:{self.requested_port}:interface={self.interface}"
        if self.port is None:
            return requested
        return f"{requested} → {_address(self.port)}"


class SerialListener(Listener):
    """A serial device (a GSM modem) bound to a Twisted protocol; needs ``pyserial``.

    One process alone can hold a device: with ``--processes`` only the first opens it.
    """

    in_every_process = False

    def __init__(self, device: str, protocol: Protocol, baudrate: int = 115200) -> None:
        self.device = device
        self.protocol = protocol
        self.baudrate = baudrate
        self.port: Any = None

    async def start(self, server: ProtocolServer) -> None:
        """Open the device."""
        try:
            from twisted.internet.serialport import SerialPort
        except ImportError as error:
            raise ImproperlyConfigured(
                f"Opening the serial device {self.device!r} needs pyserial, which is not "
                "installed: pip install pyserial."
            ) from error
        try:
            self.port = SerialPort(
                self.protocol, self.device, server.reactor, baudrate=self.baudrate
            )
        except Exception as error:
            # pyserial raises its own SerialException (an OSError subclass on most versions).
            raise ImproperlyConfigured(
                f"Cannot open the serial device {self.device!r} at {self.baudrate} baud: "
                f"{error}. Check the device path and its permissions."
            ) from error

    @property
    def address(self) -> str | None:
        """The device path, once open."""
        return self.device if self.port is not None else None

    async def stop(self, server: ProtocolServer) -> None:
        """Close the device."""
        if self.port is not None:
            self.port.loseConnection()
            self.port = None

    def describe(self) -> str:
        """``serial:device@baudrate``."""
        return f"serial:{self.device}@{self.baudrate}"


class ServiceListener(Listener):
    """A service run on the event loop: ``await start(server)`` and ``await stop(server)``."""

    def __init__(
        self,
        start: Callable[[ProtocolServer], Awaitable[None]],
        stop: Callable[[ProtocolServer], Awaitable[None]],
        description: str = "service",
    ) -> None:
        self._start = start
        self._stop = stop
        self.description = description

    async def start(self, server: ProtocolServer) -> None:
        """Run the service's start coroutine."""
        await self._start(server)

    async def stop(self, server: ProtocolServer) -> None:
        """Run the service's stop coroutine."""
        await self._stop(server)

    def describe(self) -> str:
        """The description given at construction."""
        return self.description


class TaskListener(Listener):
    """An event source without a socket: ``await run(server)`` as a task until draining.

    *run* is a coroutine function taking the server (the :class:`~channels_core.host.Host`);
    it emits events with ``server.emit`` or ``server.spawn`` for as long as it likes, a timer
    with ``await asyncio.sleep(...)`` between them. When the server drains the task is
    cancelled (``CancelledError`` arrives at its current ``await``; clean up in ``finally``)
    and awaited. If *run* raises, the error is logged and the server goes on without it.
    """

    def __init__(
        self, run: Callable[[ProtocolServer], Awaitable[None]], description: str = "task"
    ) -> None:
        self._run = run
        self.description = description
        self.task: asyncio.Task | None = None

    async def start(self, server: ProtocolServer) -> None:
        """Start the task."""
        self.task = server.loop.create_task(self._guarded(server), name=self.description)

    async def _guarded(self, server: ProtocolServer) -> None:
        try:
            await self._run(server)
        except Exception:
            logger.exception("The event source %s failed; it is stopped.", self.description)

    async def stop(self, server: ProtocolServer) -> None:
        """Cancel the task and wait for it to finish."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def describe(self) -> str:
        """The description given at construction."""
        return self.description
