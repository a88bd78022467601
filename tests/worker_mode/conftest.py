"""Fixtures for the worker-mode tests: a real ``redis-server``, ``channels serve`` and
``channels worker`` subprocesses of ``wm_project``, and WebSocket clients that stream.

Every test gets its own Redis key prefix and session directory, so tests share one Redis
server without seeing each other's messages. Every process a test starts is killed when the
test ends, if it is still running.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels_core.names import random_suffix
from channels_core.testing import processes
from channels_core.testing.processes import RunningProcess, free_port, run, start_process
from channels_core.testing.redis import redis_server
from channels_ws.testing import ConnectionClosed, WebSocketClient

__all__ = ["redis_server"]  # the fixture, imported for the tests here

HERE = Path(__file__).resolve().parent
CHANNELS = Path(sys.executable).with_name("channels")
MANAGE = HERE / "manage.py"
START_TIMEOUT = 30.0
WAIT = 20.0


def wait_until(predicate, what: str, timeout: float = WAIT):
    """:func:`channels_core.testing.processes.wait_until` with this file's timeout."""
    return processes.wait_until(predicate, what, timeout)


class Project:
    """Starts ``wm_project``'s processes on one Redis prefix (or IPC directory); kills them
    at the end."""

    def __init__(self, redis_url: str, data: Path, backend: str = "redis") -> None:
        self.env = {
            "DJANGO_SETTINGS_MODULE": "wm_project.settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            "WM_REDIS_URL": redis_url,
            "WM_PREFIX": f"wm.{random_suffix(8)}:",
            "WM_DATA": str(data),
            "WM_BACKEND": backend,
        }
        self.processes: list[RunningProcess] = []

    def _start(self, args: list, cwd: Path | None = None, **env: str) -> RunningProcess:
        process = start_process(args, env={**self.env, **env}, cwd=cwd)
        self.processes.append(process)
        return process

    def server(self, *args: str, as_daphne: bool = False, **env: str) -> tuple[RunningProcess, int]:
        """``channels serve ARGS`` on a free loopback port, once it is ready; (process, port).

        *as_daphne* runs it as ``daphne`` was run: in the project's directory, with neither
        ``DJANGO_SETTINGS_MODULE`` nor ``PYTHONPATH`` set; ARGS must name a module that names
        the settings itself (``wm_project.asgi:channel_layer``).
        """
        port = free_port()
        command = [CHANNELS, "serve", "-b", "127.0.0.1", "-p", str(port), *args]
        cwd = None
        if as_daphne:
            command = ["env", "-u", "DJANGO_SETTINGS_MODULE", "-u", "PYTHONPATH", *command]
            cwd = HERE
        process = self._start(command, cwd=cwd, **env)
        process.wait_for_line("Channels server ready", timeout=START_TIMEOUT)
        return process, port

    def worker(
        self, *args: str, version: str = "v1", pool: str = "", manage: bool = False
    ) -> RunningProcess:
        """``channels worker ARGS`` (or ``manage.py runworker``), once it listens."""
        command = [sys.executable, MANAGE, "runworker"] if manage else [CHANNELS, "worker"]
        process = self._start([*command, *args], WM_VERSION=version, WM_POOL=pool)
        process.wait_for_line("Worker listening on", timeout=START_TIMEOUT)
        return process

    def run(self, *args: str, manage: bool = False, **env: str) -> subprocess.CompletedProcess:
        """``channels ARGS`` (or ``manage.py ARGS``) to completion, *env* over the project's."""
        command = [sys.executable, MANAGE] if manage else [CHANNELS]
        return run([*command, *args], env={**self.env, **env})

    def close(self) -> None:
        for process in self.processes:
            process.__exit__(None, None, None)


@pytest.fixture
def project(redis_server, tmp_path) -> Iterator[Project]:
    """The worker-mode project on the session's Redis server, with a fresh key prefix."""
    running = Project(redis_server, tmp_path)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def ipc_project(tmp_path) -> Iterator[Project]:
    """The worker-mode project on an IPC layer in the test's directory: no Redis."""
    running = Project("", tmp_path, backend="ipc")
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def project_at(tmp_path) -> Iterator:
    """``project_at(redis_url)``: the worker-mode project on the Redis server at *redis_url*
    (one behind a network namespace's link, say), with a fresh key prefix; its processes
    are killed when the test ends."""
    started: list[Project] = []

    def start(redis_url: str) -> Project:
        running = Project(redis_url, tmp_path)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in started:
            running.close()


class StreamClient:
    """A WebSocket client whose replies a thread collects while the test sends.

    ``replies`` holds every text message received, JSON-decoded when it is JSON.
    """

    def __init__(self, port: int, path: str) -> None:
        self.client = WebSocketClient.connect(port, path, timeout=WAIT)
        self.replies: list = []
        self.closed_with: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                text = self.client.receive()
                with contextlib.suppress(ValueError):
                    text = json.loads(text)
                self.replies.append(text)
        except ConnectionClosed as closed:
            self.closed_with = closed.code
        except OSError:
            self.closed_with = 1006

    def send(self, text: str) -> None:
        """Send a text message."""
        self.client.send_text(text)

    def wait_for_replies(self, count: int, timeout: float = WAIT) -> list:
        """Wait until at least *count* replies came; return them all."""
        wait_until(
            lambda: len(self.replies) >= count or self.closed_with is not None,
            f"{count} replies (got {len(self.replies)})",
            timeout,
        )
        assert self.closed_with is None, f"the server closed the connection: {self.closed_with}"
        return list(self.replies)

    def close(self) -> None:
        """Close the connection (the reader ends with it)."""
        with contextlib.suppress(OSError):
            self.client.close()
        self.client.sock.close()
        self._reader.join(WAIT)


@pytest.fixture
def ws_clients() -> Iterator:
    """``connect(port, path)`` opens a :class:`StreamClient`; all are closed at the end."""
    opened: list[StreamClient] = []

    def connect(port: int, path: str) -> StreamClient:
        client = StreamClient(port, path)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


class Streamer:
    """Clients each sending numbered messages until told to stop; counts what came back."""

    def __init__(self, port: int, connect, clients: int, interval: float = 0.03) -> None:
        self.clients: list[StreamClient] = [connect(port, "/ws/echo/") for _ in range(clients)]
        self.sent = [0] * clients
        self.interval = interval
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._send, args=(index,), daemon=True)
            for index in range(clients)
        ]
        for thread in self.threads:
            thread.start()

    def _send(self, index: int) -> None:
        client = self.clients[index]
        while not self.stopping.is_set():
            client.send(f"{index}-{self.sent[index]}")
            self.sent[index] += 1
            time.sleep(self.interval)

    def replies(self) -> list[dict]:
        return [reply for client in self.clients for reply in client.replies]

    def wait_for_versions(self, version: str, count: int) -> None:
        wait_until(
            lambda: sum(reply["version"] == version for reply in self.replies()) >= count,
            f"{count} replies from {version} workers",
            timeout=40,
        )

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(WAIT)

    def handled(self, settle: float = 10) -> Counter:
        """How many replies each message got, once every message was answered (or *settle*
        seconds passed)."""
        total = sum(self.sent)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: len(self.replies()) >= total, f"{total} replies", settle)
        for client in self.clients:
            assert client.closed_with is None, "a client was disconnected"
        return Counter(reply["echo"] for reply in self.replies())

    def every_message(self) -> set[str]:
        return {f"{index}-{n}" for index, sent in enumerate(self.sent) for n in range(sent)}


@pytest.fixture
def streamer(ws_clients) -> Iterator:
    """``streamer(port, clients)`` starts a :class:`Streamer` on ``/ws/echo/``; stopped at the
    end."""
    started: list[Streamer] = []

    def start(port: int, clients: int) -> Streamer:
        running = Streamer(port, ws_clients, clients)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def until():
    """:func:`wait_until`, for the tests."""
    return wait_until
