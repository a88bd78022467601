"""Helpers for the UDP tests: ``channels serve`` of ``udp_project`` and UDP clients.

Servers are real ``channels serve`` subprocesses listening on free ports of 127.0.0.1 (and
::1); clients are plain UDP sockets bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels_core.testing.processes import RunningProcess, start_process
from channels_core.testing.redis import redis_server

__all__ = ["redis_server"]  # the fixture, for the worker-mode test

PROJECT = Path(__file__).resolve().parent / "udp_project"
CHANNELS = Path(sys.executable).with_name("channels")
LISTENING = re.compile(r"udp listening on udp:0:interface=\S+ → (?P<host>\S+):(?P<port>\d+)")
TIMEOUT = 10.0


def project_env(**extra: str) -> dict[str, str]:
    """The environment of the project's processes."""
    return {
        "DJANGO_SETTINGS_MODULE": "udp_project.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
        **extra,
    }


class UdpServer:
    """A running ``channels serve`` and the ports its UDP listeners got, in order."""

    def __init__(self, process: RunningProcess) -> None:
        self.process = process
        process.wait_for_line("Channels server ready", timeout=30)
        self.ports = [int(found.group("port")) for found in LISTENING.finditer(process.output)]

    @property
    def port(self) -> int:
        """The first listener's port."""
        return self.ports[0]


def start_server(*args: str, **env: str) -> UdpServer:
    """Start ``channels serve ARGS`` for the project and wait until it is ready."""
    process = start_process([CHANNELS, "serve", *args], env=project_env(**env))
    try:
        return UdpServer(process)
    except BaseException:
        process.__exit__(None, None, None)
        raise


@pytest.fixture
def serve() -> Iterator:
    """``serve(*args, **env)``: :func:`start_server`; every server is killed at the end."""
    started: list[UdpServer] = []

    def start(*args: str, **env: str) -> UdpServer:
        server = start_server(*args, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.__exit__(None, None, None)


@pytest.fixture
def worker() -> Iterator:
    """``worker(*args, **env)`` starts ``channels worker ARGS`` once it listens; killed at the
    end."""
    started: list[RunningProcess] = []

    def start(*args: str, **env: str) -> RunningProcess:
        process = start_process([CHANNELS, "worker", *args], env=project_env(**env))
        started.append(process)
        process.wait_for_line("Worker listening on", timeout=30)
        return process

    yield start
    for process in started:
        process.__exit__(None, None, None)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[UdpServer]:
    """One server for a module: two IPv4 listeners and an IPv6 one, from the command line."""
    server = start_server("--udp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--udp", "[::1]:0")
    try:
        yield server
    finally:
        server.process.__exit__(None, None, None)


class Client:
    """A UDP socket on 127.0.0.1 (or ::1) talking to a server port."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(TIMEOUT)
        self.server = (host, port)

    @property
    def port(self) -> int:
        """The client's own port."""
        return self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        """Send one datagram to the server."""
        self.sock.sendto(data, self.server)

    def receive(self) -> tuple[bytes, tuple]:
        """The next datagram and the address it came from (TimeoutError after TIMEOUT)."""
        data, address = self.sock.recvfrom(70000)
        return data, address[:2]

    def ask(self, data: bytes) -> bytes:
        """Send *data* and return the next datagram received."""
        self.send(data)
        return self.receive()[0]

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


@pytest.fixture
def client() -> Iterator:
    """``client(port, host="127.0.0.1")`` opens a :class:`Client`; all closed at the end."""
    opened: list[Client] = []

    def connect(port: int, host: str = "127.0.0.1") -> Client:
        made = Client(port, host)
        opened.append(made)
        return made

    yield connect
    for made in opened:
        made.close()
