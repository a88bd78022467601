"""The worker as a real process: channel selection, failing consumers, graceful SIGTERM.

Each test starts ``manage.py runworker`` of ``worker_project`` (or ``run_worker`` through
``python -c``). The project's ``channels_startup`` hook connects back to a socket the test
listens on, reports the channels the worker listens on, and puts the messages the test sends
on the worker's layer (an IPC layer in the test's directory); its ``channels_shutdown`` hook
leaves a ``shutdown`` file; consumers leave result files in that directory. One test runs a
Worker in this process, to watch the hooks and an abandoned consumer up close.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.test import override_settings

from channels_core import hookimpl
from channels_core.exceptions import ImproperlyConfigured
from channels_core.layers import get_channel_layer
from channels_core.plugins import get_registry
from channels_core.routing import route
from channels_core.testing import processes
from channels_core.worker import Worker, select_channels

HERE = Path(__file__).resolve().parent
MANAGE = HERE / "worker_project" / "manage.py"
WAIT = 20.0

pytestmark = pytest.mark.slow


def wait_until(predicate, what: str, timeout: float = WAIT):
    """:func:`channels_core.testing.processes.wait_until` with this file's timeout."""
    return processes.wait_until(predicate, what, timeout)


class WorkerProcess:
    """A worker subprocess, its stderr collected by a thread, and its bridge connection."""

    def __init__(self, command: list[str], results: Path) -> None:
        self.results = results
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "DJANGO_SETTINGS_MODULE": "worker_project.settings",
            "WORKER_TEST_DIR": str(results),
            "WORKER_TEST_PORT": str(self.listener.getsockname()[1]),
        }
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr_lines: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.connection = None
        self.bridge = None

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def connect(self) -> list[str]:
        """Accept the worker's bridge connection; return the channels it listens on."""
        try:
            self.connection, _ = self.listener.accept()
        except TimeoutError:
            raise AssertionError(f"The worker never connected; stderr:\n{self.stderr}") from None
        self.connection.settimeout(WAIT)
        self.bridge = self.connection.makefile("rwb")
        return json.loads(self.bridge.readline())["channels"]

    def send(self, channel: str, content: dict) -> None:
        """Put a message on the worker's layer, and wait until it is there."""
        self.bridge.write(json.dumps({"channel": channel, "content": content}).encode() + b"\n")
        self.bridge.flush()
        assert json.loads(self.bridge.readline()) == {"sent": True}

    def wait_for_log(self, text: str) -> None:
        wait_until(lambda: text in self.stderr, f"{text!r} in the worker's stderr")

    def wait_for_file(self, name: str) -> dict:
        path = self.results / name
        wait_until(path.exists, f"the result file {name!r}; stderr:\n{self.stderr}")
        return json.loads(path.read_text())

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.wait()

    def wait(self) -> int:
        try:
            status = self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"The worker did not exit; stderr:\n{self.stderr}") from None
        self._reader.join(WAIT)
        return status

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT)
        self._reader.join(WAIT)
        for closable in (self.bridge, self.connection, self.listener, self.process.stderr):
            if closable is not None:
                closable.close()


@pytest.fixture
def start_worker(tmp_path):
    started = []

    def start(*arguments: str, python_code: str | None = None) -> WorkerProcess:
        if python_code is None:
            command = [sys.executable, str(MANAGE), "runworker", *arguments]
        else:
            command = [sys.executable, "-c", python_code]
        worker = WorkerProcess(command, tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def test_only_and_exclude_channels_choose_what_the_worker_listens_on(start_worker):
    worker = start_worker(
        "--only-channels",
        "work.*",
        "--exclude-channels",
        "work.slow",
        "--exclude-channels",
        "work.boom",
    )
    assert worker.connect() == ["work.echo"]
    worker.wait_for_log("Worker listening on work.echo (layer 'default'")
    worker.send("other.echo", {"n": 1})
    worker.send("work.echo", {"n": 2})
    assert worker.wait_for_file("work.echo-2") == {"n": 2}
    assert worker.stop() == 0
    assert not (worker.results / "other.echo-1").exists()
    assert (worker.results / "shutdown").read_text() == "worker"


def test_without_filters_the_worker_listens_on_every_routed_channel(start_worker):
    worker = start_worker("--threads", "2")
    assert worker.connect() == ["other.echo", "work.boom", "work.echo", "work.slow"]
    worker.wait_for_log("(layer 'default', 2 threads)")
    assert worker.stop(signal.SIGINT) == 0


def test_channel_filters_that_match_nothing_fail_with_a_clear_error(start_worker):
    worker = start_worker("--only-channels", "nomatch.*")
    assert worker.wait() != 0
    assert (
        "no channels to listen on: the routing handles other.echo, work.boom, work.echo, "
        "work.slow; --only-channels nomatch.* matched none."
    ) in worker.stderr


def test_a_raising_consumer_is_logged_and_the_worker_keeps_serving(start_worker):
    worker = start_worker()
    worker.connect()
    worker.send("work.boom", {"n": 1})
    worker.wait_for_log("RuntimeError: boom consumer failed on purpose (n=1)")
    assert "Consumer worker_project.consumers.boom raised on channel 'work.boom'" in worker.stderr
    worker.send("work.echo", {"n": 5})
    assert worker.wait_for_file("work.echo-5") == {"n": 5}
    assert worker.process.poll() is None
    assert worker.stop() == 0


def test_sigterm_lets_the_running_consumer_finish_and_exits_zero(start_worker):
    worker = start_worker()
    worker.connect()
    worker.send("work.slow", {"n": 1})
    worker.wait_for_file("started")
    worker.process.send_signal(signal.SIGTERM)
    worker.wait_for_log("Stopping: waiting up to 30.0s for 1 running consumer(s)")
    # The receive loops are gone: this message stays on the layer, unconsumed.
    worker.send("work.echo", {"n": 9})
    assert worker.process.poll() is None
    (worker.results / "release").touch()
    assert worker.wait() == 0
    assert worker.wait_for_file("done") == {"n": 1}
    assert not (worker.results / "work.echo-9").exists()
    assert (worker.results / "shutdown").exists()
    assert "Abandoned" not in worker.stderr


def test_run_worker_serves_until_sigint(start_worker):
    worker = start_worker(
        python_code=(
            "import sys; from channels_core.worker import run_worker; "
            "sys.exit(run_worker(only_channels=['work.echo']))"
        )
    )
    assert worker.connect() == ["work.echo"]
    worker.send("work.echo", {"n": 3})
    assert worker.wait_for_file("work.echo-3") == {"n": 3}
    assert worker.stop(signal.SIGINT) == 0


def test_select_channels_globs_and_errors():
    routed = {"http.request", "websocket.connect", "websocket.receive", "thumbnails"}
    assert select_channels(routed) == sorted(routed)
    assert select_channels(routed, ["websocket.*"], ["*.connect"]) == ["websocket.receive"]
    with pytest.raises(ImproperlyConfigured, match="--exclude-channels \\* excluded the rest"):
        select_channels(routed, exclude_channels=["*"])


async def test_in_process_worker_calls_the_hooks_and_abandons_a_stuck_consumer(caplog):
    handled = asyncio.Event()
    stuck_entered = asyncio.Event()
    started = asyncio.Event()
    events = []

    async def handle(message):
        handled.set()

    async def stuck(message):
        stuck_entered.set()
        await asyncio.Event().wait()

    class Hooks:
        @hookimpl
        def channels_startup(self, server):
            events.append(("startup", server.kind, server.loop is asyncio.get_running_loop()))
            started.set()

        @hookimpl
        def channels_shutdown(self, server):
            events.append(("shutdown", server.dispatcher.in_flight))

    layers = {
        "default": {"BACKEND": "memory", "ROUTING": [route("jobs", handle), route("stuck", stuck)]}
    }
    with override_settings(CHANNEL_LAYERS=layers), caplog.at_level(logging.INFO, "channels_core"):
        manager = get_registry().manager
        manager.register(Hooks(), name="test-worker-hooks")
        try:
            worker = Worker(shutdown_timeout=0.2)
            running = asyncio.create_task(worker.run())
            await asyncio.wait_for(started.wait(), WAIT)
            await worker.layer.send("jobs", {"n": 1})
            await worker.layer.send("stuck", {})
            await asyncio.wait_for(handled.wait(), WAIT)
            await asyncio.wait_for(stuck_entered.wait(), WAIT)
            worker.stop()
            await asyncio.wait_for(running, WAIT)
        finally:
            manager.unregister(name="test-worker-hooks")
    assert events == [("startup", "worker", True), ("shutdown", 0)]
    assert "Abandoned 1 consumer(s) still running after 0.2s, on channels: stuck" in caplog.text


async def test_a_failing_layer_stops_the_worker_with_status_1(caplog):
    async def handle(message):
        pass

    layers = {"default": {"BACKEND": "memory", "ROUTING": [route("jobs", handle)]}}
    with override_settings(CHANNEL_LAYERS=layers), caplog.at_level(logging.ERROR, "channels_core"):
        worker = Worker()
        running = asyncio.create_task(worker.run())
        await get_channel_layer().close()
        assert await asyncio.wait_for(running, WAIT) == 1
    assert "Receiving on receive jobs failed; stopping the worker." in caplog.text
