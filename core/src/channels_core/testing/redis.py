"""Real ``redis-server`` processes for tests: started on free ports in temporary directories.

::

    from channels_core.testing.redis import redis_server  # a session-scoped pytest fixture

    def test_something(redis_server):
        layer = RedisChannelLayer(hosts=[redis_server])

:func:`running_redis` is the same server as a context manager, for a test that stops it.
:class:`RedisServer` is one server a test can kill (``SIGKILL``) and start again on the same
port, optionally with a password, a unix socket or TLS (a self-signed certificate made with
the ``openssl`` command); :func:`running_cluster` starts a Redis Cluster of several primaries
and :func:`running_sentinel` a Sentinel watching a server. Persistence is off and every server
listens on 127.0.0.1 (or its unix socket) only, unless it runs in a network namespace the test
made (:mod:`channels_core.testing.netns`).

Without ``redis-server`` (or ``redis-cli``, or ``openssl`` for TLS) on ``PATH``, each of them
skips the test that asked for it, saying what to install, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from .processes import LOOPBACK, free_port, require_program

START_TIMEOUT = 10.0


def _ask(sock: socket.socket, command: bytes) -> bytes:
    sock.sendall(command)
    return sock.recv(4096)


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (10000 more) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("Found no free port pair (port, port + 10000) for a Redis Cluster node.")


class RedisServer:
    """One ``redis-server`` that a test can stop and start again on the same port.

    :param password: require this password (``requirepass``).
    :param unix_socket: also listen on a unix socket, whose path is :attr:`socket_path`.
    :param tls: serve TLS on :attr:`port` (plain TCP is off); :attr:`ca_file` holds the
        self-signed certificate that clients trust.
    :param extra_args: more ``redis-server`` arguments (``["--cluster-enabled", "yes"]``).
    :param host: the address it listens on, 127.0.0.1 unless it runs in a network namespace
        (:func:`channels_core.testing.netns.redis_in`).
    :param launcher: a command prefix it runs under (``["ip", "netns", "exec", "NAME"]``).
    """

    def __init__(
        self,
        password: str | None = None,
        unix_socket: bool = False,
        tls: bool = False,
        extra_args: Sequence[str] = (),
        timeout: float = START_TIMEOUT,
        host: str = LOOPBACK,
        launcher: Sequence[str] = (),
    ) -> None:
        # Skip before anything is made (a missing program is no leaked directory).
        self.program = require_program("redis-server")
        openssl = require_program("openssl") if tls else None
        cluster = "--cluster-enabled" in extra_args
        self.port = _free_cluster_port() if cluster else free_port()
        self.host = host
        self._launcher = list(launcher)
        self.password = password
        self.tls = tls
        self.timeout = timeout
        self._directory = tempfile.TemporaryDirectory(prefix="channels-redis-")
        self.directory = Path(self._directory.name)
        self.socket_path = str(self.directory / "redis.sock") if unix_socket else None
        self.ca_file = str(self.directory / "cert.pem") if tls else None
        self._extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        if openssl is not None:
            self._make_certificate(openssl)

    def _make_certificate(self, openssl: str) -> None:
        subprocess.run(
            [
                openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(self.directory / "key.pem"), "-out", self.ca_file,
                "-subj", f"/CN={self.host}", "-addext", f"subjectAltName=IP:{self.host}",
            ],
            check=True,
            capture_output=True,
            timeout=self.timeout,
        )  # fmt: skip

    @property
    def url(self) -> str:
        """The server's ``redis://`` (or ``rediss://``) URL, with the password if any."""
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}{self.host}:{self.port}/0"

    @property
    def command(self) -> list[str]:
        """The ``redis-server`` command line."""
        command = [
            *self._launcher,
            self.program,
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
        ]  # fmt: skip
        if self.tls:
            command += [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", self.ca_file,
                "--tls-key-file", str(self.directory / "key.pem"),
                "--tls-ca-cert-file", self.ca_file,
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        else:
            command += ["--port", str(self.port)]
        if self.socket_path:
            command += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        if self.password:
            command += ["--requirepass", self.password]
        return command + self._extra_args

    def _answers_ping(self) -> bool:
        try:
            with contextlib.ExitStack() as stack:
                sock = stack.enter_context(
                    socket.create_connection((self.host, self.port), timeout=0.5)
                )
                if self.tls:
                    context = ssl.create_default_context(cafile=self.ca_file)
                    sock = stack.enter_context(context.wrap_socket(sock, server_hostname=self.host))
                if self.password:
                    _ask(sock, f"AUTH {self.password}\r\n".encode())
                return _ask(sock, b"PING\r\n").startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> RedisServer:
        """Start the server (again) and wait until it answers ``PING``."""
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
        )
        deadline = time.monotonic() + self.timeout
        while not self._answers_ping():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with code {self.process.returncode} before answering "
                    f"on port {self.port}; run {' '.join(self.command)!r} by hand to see why."
                )
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"redis-server did not answer PING within {self.timeout} s.")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """Stop the server at once (``SIGKILL``): what it held in memory is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(self.timeout)
        self.process = None

    def cli(self, *args: str) -> str:
        """Run ``redis-cli`` against the server and return its output."""
        command = [
            require_program("redis-cli", "redis-tools"),
            "-h",
            self.host,
            "-p",
            str(self.port),
        ]
        if self.tls:
            command += ["--tls", "--cacert", self.ca_file]
        if self.password:
            command += ["--no-auth-warning", "-a", self.password]
        result = subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=self.timeout, check=True
        )
        return result.stdout

    def close(self) -> None:
        """Kill the server and remove its directory."""
        self.kill()
        self._directory.cleanup()

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()  # the with block's __exit__ does not run when __enter__ raises
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def running_redis(timeout: float = START_TIMEOUT) -> Iterator[str]:
    """Run a fresh ``redis-server`` and yield its URL; it is killed when the block ends."""
    with RedisServer(timeout=timeout) as server:
        yield server.url


@contextlib.contextmanager
def running_cluster(primaries: int = 3, timeout: float = 30.0) -> Iterator[list[RedisServer]]:
    """Run a Redis Cluster of *primaries* servers (no replicas); yield them once it is ok."""
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                RedisServer(
                    extra_args=["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
                )
            )
            for _ in range(primaries)
        ]
        addresses = [f"{LOOPBACK}:{server.port}" for server in servers]
        servers[0].cli("--cluster", "create", *addresses, "--cluster-yes")
        deadline = time.monotonic() + timeout
        while not all("cluster_state:ok" in server.cli("cluster", "info") for server in servers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"The Redis Cluster was not ok within {timeout} s.")
            time.sleep(0.1)
        yield servers


@contextlib.contextmanager
def running_sentinel(
    master: RedisServer, master_name: str = "mymaster", timeout: float = START_TIMEOUT
) -> Iterator[tuple[str, int]]:
    """Run a Redis Sentinel watching *master* as *master_name*; yield its (host, port)."""
    program = require_program("redis-server")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="channels-sentinel-") as directory:
        config = Path(directory) / "sentinel.conf"
        auth = f"sentinel auth-pass {master_name} {master.password}\n" if master.password else ""
        config.write_text(
            f"port {port}\nbind {LOOPBACK}\ndir {directory}\n"
            f"sentinel monitor {master_name} {LOOPBACK} {master.port} 1\n{auth}"
        )
        command = [program, str(config), "--sentinel"]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection((LOOPBACK, port), timeout=0.5) as sock,
                ):
                    question = f"SENTINEL get-master-addr-by-name {master_name}\r\n".encode()
                    if str(master.port).encode() in _ask(sock, question):
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"The sentinel on port {port} did not report master {master_name!r} "
                        f"within {timeout} s; run {' '.join(command)!r} by hand to see why."
                    )
                time.sleep(0.05)
            yield LOOPBACK, port
        finally:
            process.kill()
            process.wait(timeout)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of a ``redis-server`` shared by the whole test session."""
    with running_redis() as url:
        yield url
