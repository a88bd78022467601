"""A real ``redis-server`` for tests: started on a free port in a temporary directory.

::

    from channels_core.testing.redis import redis_server  # a session-scoped pytest fixture

    def test_something(redis_server):
        layer = RedisChannelLayer(hosts=[redis_server])

:func:`running_redis` is the same server as a context manager, for a test that stops it.
Persistence is off and the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from .processes import LOOPBACK, free_port

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT = 10.0


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis(timeout: float = START_TIMEOUT) -> Iterator[str]:
    """Run a fresh ``redis-server`` and yield its URL; it is killed when the block ends."""
    executable = shutil.which("redis-server") or REDIS_SERVER
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="channels-redis-") as directory:
        command = [
            executable,
            "--port", str(port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", directory,
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory
        )
        try:
            deadline = time.monotonic() + timeout
            while not _answers_ping(port):
                if process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited with code {process.returncode} before answering "
                        f"on port {port}; run {' '.join(command)!r} by hand to see why."
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server did not answer PING within {timeout} s.")
                time.sleep(0.02)
            yield f"redis://{LOOPBACK}:{port}/0"
        finally:
            process.kill()
            process.wait(timeout)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of a ``redis-server`` shared by the whole test session."""
    with running_redis() as url:
        yield url
