"""``channels serve --processes N``: one parent, N serving children, the listeners bound once.

The parent binds every stream and datagram listener of the enabled protocols itself (a
``tcp:``, ``ssl:``, ``unix:`` or ``fd:`` endpoint, a UDP address), then starts N children
running the same ``channels serve`` command line. Each child inherits the bound sockets and
adopts them instead of binding (:func:`inherited_socket`; an ``ssl:`` child does the TLS
itself), so they all accept on the same sockets and the kernel hands each new connection (or
datagram) to one of them. With ``--reuse-port`` each child gets ``SO_REUSEPORT`` sockets of
its own for ``tcp:``/``ssl:`` endpoints and UDP addresses instead, and the kernel picks the
child by the client's address (:func:`bind_listeners`). The parent then only supervises:

- a child that dies is logged with its exit status and replaced, after a back-off that grows
  while it keeps dying (0.5 s, doubling, at most 30 s; reset once a child has run 30 s);
- SIGTERM or SIGINT drains every child (each as one ``channels serve`` does) and exits 0;
- SIGHUP replaces the children one at a time with fresh processes, which load the code anew:
  the new child starts and says it is ready, then the old one drains as for a restart
  (SIGUSR1: it stops accepting, finishes its work in flight, closes its WebSockets with 1012),
  so the sockets are never without a process accepting;
- a child whose parent dies (SIGKILL) is told by the kernel (``PR_SET_PDEATHSIG``) and
  drains too, and checks at start-up that its parent is still there.

Protocols with something only one process can hold (a serial device) run it in the first
child only (``Listener.in_every_process``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured
from .settings import DEFAULT_BACKLOG

if TYPE_CHECKING:
    from .listeners import Listener

logger = logging.getLogger(__name__)

ENV_SOCKETS = "CHANNELS_INHERITED_SOCKETS"
ENV_INDEX = "CHANNELS_PROCESS_INDEX"
ENV_READY = "CHANNELS_READY_FD"
ENV_PARENT = "CHANNELS_PARENT_PID"
#: A directory the children of one ``channels serve --processes`` share for that run (made
#: empty at start, removed at exit): where a plugin keeps per-run files the processes share,
#: such as channels-metrics's multiprocess files.
ENV_RUN_DIR = "CHANNELS_RUN_DIR"

CHILD_COMMAND = "import sys; from channels_core.cli import main; sys.exit(main())"
# How long a new child may take to say it is ready, and how long a child that lived this long
# counts as healthy again (its back-off starts over).
READY_TIMEOUT = 60.0
HEALTHY_AFTER = 30.0
BACKOFF_FIRST, BACKOFF_MOST = 0.5, 30.0
# What the parent waits for after the drain timeout before it kills a child still draining.
KILL_GRACE = 15.0
PR_SET_PDEATHSIG = 1


def process_count(value: object, where: str = "--processes") -> int:
    """A number of processes: a whole number of 1 or more, or ``"auto"`` (one per CPU)."""
    cpus = os.cpu_count() or 1
    if value == "auto":
        return cpus
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(
            f"{where} is {value!r}; give a whole number of processes of 1 or more, or 'auto' "
            f"for one per CPU ({cpus} here)."
        )
    return value


# In a child ---------------------------------------------------------------------------------


def process_index() -> int | None:
    """This process's index among the parent's children, or None when it has no parent."""
    index = os.environ.get(ENV_INDEX)
    return int(index) if index is not None else None


# How many of the sockets bound for each key this process has taken.
_taken: dict[str, int] = {}


def inherited_socket(key: str) -> int | None:
    """The file descriptor of the next socket the parent bound for *key*, or None.

    Two listeners on the same endpoint string (two ``tcp:0`` endpoints) have a socket each:
    the children build their listeners in the parent's order and take them in turn.
    """
    sockets = os.environ.get(ENV_SOCKETS)
    if not sockets:
        return None
    fds = json.loads(sockets).get(key, [])
    taken = _taken.get(key, 0)
    if taken >= len(fds):
        return None
    _taken[key] = taken + 1
    return fds[taken]


def stream_key(endpoint: str) -> str:
    """The key of a stream listener's socket."""
    return f"stream {endpoint}"


def datagram_key(interface: str, port: int) -> str:
    """The key of a datagram listener's socket."""
    return f"udp {interface} {port}"


def child_started() -> None:
    """In a child: die with the parent, and make sure it is still there."""
    parent = os.environ.get(ENV_PARENT)
    if parent is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):
        raise ImproperlyConfigured(
            f"The parent process {parent} of this channels serve child is gone; exiting."
        )


def tell_ready() -> None:
    """In a child: tell the parent its listeners are up (no-op without a parent)."""
    fd = os.environ.pop(ENV_READY, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(int(fd), b"r")
            os.close(int(fd))


# In the parent --------------------------------------------------------------------------------


def endpoint_parts(endpoint: str) -> tuple[str, list[str], dict[str, str]]:
    """A Twisted endpoint string's type, positional arguments and keyword arguments."""
    parts, current, escaped = [], "", False
    for char in endpoint:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    kind, arguments = parts[0].lower(), parts[1:]
    positional = [part for part in arguments if "=" not in part]
    keywords = dict(part.split("=", 1) for part in arguments if "=" in part)
    return kind, positional, keywords


def reusable(listener: Listener) -> bool:
    """Whether *listener* can have a ``SO_REUSEPORT`` socket per process: a ``tcp:`` or
    ``tcp6:`` endpoint, or a UDP address (a Unix or inherited socket is always shared)."""
    from .listeners import DatagramListener, StreamListener

    if isinstance(listener, DatagramListener):
        return True
    return isinstance(listener, StreamListener) and endpoint_parts(listener.endpoint)[0] in (
        "tcp",
        "tcp6",
        "ssl",
    )


def bind_stream(
    endpoint: str,
    reuse_port: bool = False,
    port: int | None = None,
    backlog: int = DEFAULT_BACKLOG,
) -> socket.socket:
    """A listening socket for *endpoint* (``tcp:``, ``unix:`` or ``fd:``), for the children.

    With *reuse_port*, a ``tcp:`` socket gets ``SO_REUSEPORT`` so that more sockets can be
    bound to the same address (one per process), on *port* when given (the port the first of
    them got, for ``tcp:0``). It queues *backlog* connections, unless the endpoint gives its
    own ``backlog=``.
    """
    kind, positional, keywords = endpoint_parts(endpoint)
    backlog = int(keywords.get("backlog", backlog))
    try:
        if kind in ("tcp", "tcp6", "ssl"):  # ssl: the children each do the TLS
            if port is None:
                port = int(keywords.get("port", positional[0] if positional else 0))
            interface = keywords.get("interface", "::" if kind == "tcp6" else "")
            family = socket.AF_INET6 if kind == "tcp6" or ":" in interface else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((interface, port))
        elif kind == "unix":
            path = keywords.get("address", positional[0] if positional else "")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
            if "mode" in keywords:
                os.chmod(path, int(keywords["mode"], 8))
        elif kind == "fd":
            return socket.socket(fileno=os.dup(int(keywords["fileno"])))
        else:
            raise ImproperlyConfigured(
                f"--processes cannot share the endpoint {endpoint!r} between processes: use a "
                "tcp:, ssl:, unix: or fd: endpoint, or serve it with --processes 1."
            )
        sock.listen(backlog)
    except (OSError, ValueError, IndexError, KeyError) as error:
        raise ImproperlyConfigured(
            f"Cannot listen on {endpoint!r} for the processes: {error}. Pick another port or "
            "address, or stop the process that holds it."
        ) from error
    return sock


def bind_datagram(interface: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A bound UDP socket for the children to share (with *reuse_port*, one of several bound
    to the same address, one per process)."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((interface, port))
    except OSError as error:
        sock.close()
        raise ImproperlyConfigured(
            f"Cannot listen for UDP on {interface}:{port} for the processes: {error}. Pick "
            "another port or address."
        ) from error
    return sock


def bind_listeners(
    listeners: list[Listener],
    count: int = 1,
    reuse_port: bool = False,
    backlog: int = DEFAULT_BACKLOG,
) -> list[dict[str, list[socket.socket]]]:
    """Bind the sockets of *listeners*, in order, by the key each child adopts them under.

    The result has one mapping per child index: one mapping shared by every child, or with
    *reuse_port*, *count* mappings in which every ``tcp:`` endpoint and UDP address has a
    ``SO_REUSEPORT`` socket of its own per child (Unix and inherited sockets stay shared).
    Child ``i`` takes ``result[i % len(result)]``. Stream sockets queue *backlog*
    connections (``CHANNELS["BACKLOG"]``) unless their endpoint gives ``backlog=``.
    """
    from .listeners import DatagramListener, StreamListener

    copies = count if reuse_port else 1
    per_child: list[dict[str, list[socket.socket]]] = [{} for _ in range(copies)]
    try:
        for listener in listeners:
            many = reuse_port and reusable(listener)
            if isinstance(listener, StreamListener):
                if endpoint_parts(listener.endpoint)[0] == "ssl":
                    # Its key and certificate are read here once, so that a bad one stops
                    # the start with one sentence rather than every child in a crash loop.
                    listener.parse(None)
                key = stream_key(listener.endpoint)
                first = bind_stream(listener.endpoint, reuse_port=many, backlog=backlog)
                port = first.getsockname()[1] if many else None
                socks = [first] + [
                    bind_stream(listener.endpoint, reuse_port=True, port=port, backlog=backlog)
                    for _ in range(copies - 1 if many else 0)
                ]
            elif isinstance(listener, DatagramListener):
                key = datagram_key(listener.interface, listener.requested_port)
                first = bind_datagram(listener.interface, listener.requested_port, many)
                port = first.getsockname()[1]
                socks = [first] + [
                    bind_datagram(listener.interface, port, True)
                    for _ in range(copies - 1 if many else 0)
                ]
            else:
                continue
            for index, mapping in enumerate(per_child):
                sock = socks[index if many else 0]
                sock.set_inheritable(True)
                mapping.setdefault(key, []).append(sock)
    except BaseException:
        for sock in _every(per_child):
            sock.close()
        raise
    return per_child


def _every(per_child: list[dict[str, list[socket.socket]]]) -> list[socket.socket]:
    """Every socket of *per_child* once (a shared one is in every mapping)."""
    unique: dict[int, socket.socket] = {}
    for mapping in per_child:
        for socks in mapping.values():
            for sock in socks:
                unique.setdefault(id(sock), sock)
    return list(unique.values())


def describe_sharing(listener: Listener, count: int, reuse_port: bool = False) -> str:
    """What *count* processes do with *listener*, for the parent's start-up log."""
    from .listeners import DatagramListener, StreamListener

    address = (
        listener.endpoint
        if isinstance(listener, StreamListener)
        else f"udp {getattr(listener, 'interface', '')}:{getattr(listener, 'requested_port', '')}"
    )
    if reuse_port and reusable(listener):
        return (
            f"{address} has a SO_REUSEPORT socket in each of the {count} processes: the "
            "kernel spreads clients over them by address"
        )
    if isinstance(listener, StreamListener):
        return f"{listener.endpoint} is bound once; the {count} processes accept on it"
    if isinstance(listener, DatagramListener):
        return (
            f"{address} is one socket the {count} processes share: each datagram goes to "
            "one of them, so one client's datagrams may reach several, and rate limits count "
            "per process"
        )
    if not listener.in_every_process:
        return f"{listener.describe()} runs in the first process only"
    return f"{listener.describe()} runs in each of the {count} processes"


@dataclass
class Child:
    """One serving child: its index, process, readiness pipe and start time."""

    index: int
    process: subprocess.Popen
    ready: int | None
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


class Supervisor:
    """The parent of ``channels serve --processes N``; see the module docstring."""

    def __init__(
        self,
        count: int,
        arguments: list[str],
        sockets: list[dict[str, list[socket.socket]]],
        drain: float,
    ) -> None:
        self.count = count
        self.arguments = arguments
        self.sockets = sockets
        self.drain_timeout = drain
        self.children: dict[int, Child] = {}
        self.failures: dict[int, int] = {}
        self.restart_at: dict[int, float] = {}
        self.stopping = False
        self.reload_requested = False
        self.run_dir = tempfile.mkdtemp(prefix="channels-run-")
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    # Signals -------------------------------------------------------------------------------

    def _on_stop(self, signum: int, frame: Any) -> None:
        if not self.stopping:
            logger.info("%s: draining every process.", signal.Signals(signum).name)
        self.stopping = True

    def _on_reload(self, signum: int, frame: Any) -> None:
        self.reload_requested = True

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_write)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        # Only to wake the loop when a child ends.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    # Children ------------------------------------------------------------------------------

    def _spawn(self, index: int) -> Child:
        read, write = os.pipe()
        mine = self.sockets[index % len(self.sockets)]
        fds = {key: [sock.fileno() for sock in socks] for key, socks in mine.items()}
        env = {
            **os.environ,
            ENV_RUN_DIR: self.run_dir,
            ENV_SOCKETS: json.dumps(fds),
            ENV_INDEX: str(index),
            ENV_READY: str(write),
            ENV_PARENT: str(os.getpid()),
        }
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", CHILD_COMMAND, *self.arguments],
                env=env,
                pass_fds=[sock.fileno() for sock in _every([mine])] + [write],
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(write)
        logger.info("Started process %d (pid %d).", index, process.pid)
        return Child(index, process, read, time.monotonic())

    def _wait_ready(self, child: Child, timeout: float = READY_TIMEOUT) -> bool:
        """Wait for *child* to say it is ready; False if it died, timed out or a stop came."""
        deadline = time.monotonic() + timeout
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            readable, _, _ = select.select([child.ready, self._wake_read], [], [], remaining)
            self._drain_wake()
            if child.ready in readable:
                said = os.read(child.ready, 1)
                self._close_ready(child)
                return bool(said)
        return False

    def _close_ready(self, child: Child) -> None:
        if child.ready is not None:
            os.close(child.ready)
            child.ready = None

    def _drain_wake(self) -> None:
        """Empty the wake-up pipe the signal handlers write to."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 512):
                pass

    def _reap(self) -> None:
        """Notice children that ended; schedule a replacement for each (with back-off)."""
        for index, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[index]
            self._close_ready(child)
            if self.stopping:
                continue
            lived = time.monotonic() - child.started
            if lived >= HEALTHY_AFTER:
                self.failures[index] = 0
            self.failures[index] = self.failures.get(index, 0) + 1
            delay = min(BACKOFF_MOST, BACKOFF_FIRST * 2 ** (self.failures[index] - 1))
            logger.warning(
                "Process %d (pid %d) exited with %s after %.1f s; starting another in %.1f s.",
                index,
                child.pid,
                _status(code),
                lived,
                delay,
            )
            self.restart_at[index] = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for index, when in list(self.restart_at.items()):
            if when <= now and not self.stopping:
                del self.restart_at[index]
                self.children[index] = self._spawn(index)

    def _rolling_restart(self) -> None:
        """Replace each child by a fresh one: start it, wait until ready, retire the old."""
        logger.info("SIGHUP: replacing the %d processes one at a time.", self.count)
        for index in range(self.count):
            if self.stopping:
                return
            old = self.children.get(index)
            fresh = self._spawn(index)
            if not self._wait_ready(fresh):
                if self.stopping:
                    self.children.setdefault(index, fresh)
                    return
                logger.error(
                    "The new process %d (pid %d) did not become ready; keeping the old one "
                    "and stopping the restart.",
                    index,
                    fresh.pid,
                )
                _stop(fresh.process, self.drain_timeout)
                return
            self.children[index] = fresh
            self.failures[index] = 0
            if old is not None:
                # SIGUSR1: drain as for a restart (WebSockets close with 1012).
                old.process.send_signal(signal.SIGUSR1)
                _wait(old.process, self.drain_timeout + KILL_GRACE)
                self._close_ready(old)
        logger.info("Every process was replaced.")

    # The loop ------------------------------------------------------------------------------

    def run(self) -> int:
        """Start the children, supervise them until SIGTERM or SIGINT, drain them; 0."""
        self._install_signals()
        try:
            for index in range(self.count):
                self.children[index] = self._spawn(index)
            for child in list(self.children.values()):
                self._wait_ready(child)
            logger.info(
                "Serving with %d processes (pids %s).",
                self.count,
                ", ".join(str(child.pid) for child in self.children.values()),
            )
            while not self.stopping:
                self._reap()
                if self.reload_requested:
                    self.reload_requested = False
                    self._rolling_restart()
                    continue
                self._restart_due()
                select.select([self._wake_read], [], [], 0.5)
                self._drain_wake()
        finally:
            self._stop_children()
            for sock in _every(self.sockets):
                sock.close()
            shutil.rmtree(self.run_dir, ignore_errors=True)
            signal.set_wakeup_fd(-1)
        logger.info("Every process stopped.")
        return 0

    def _stop_children(self) -> None:
        children = list(self.children.values())
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.drain_timeout + KILL_GRACE
        for child in children:
            _wait(child.process, max(0.0, deadline - time.monotonic()))
            self._close_ready(child)


def _wait(process: subprocess.Popen, timeout: float) -> None:
    """Wait for *process* to end; kill it after *timeout* seconds."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning("Process pid %d did not finish draining; killing it.", process.pid)
        process.kill()
        process.wait()


def _stop(process: subprocess.Popen, drain_timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    _wait(process, drain_timeout + KILL_GRACE)
