"""``gunicorn -k channels_core.gunicorn.ChannelsWorker``: real gunicorn arbiters and workers
serving the WebSocket and HTTP test projects over 127.0.0.1.

``gunicorn_project`` adds a ``/pid/`` route (the answering worker's process id) to each
project's routing, so the tests can tell the workers apart.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import stat
import sys
from pathlib import Path

import pytest

from channels_core.testing.processes import RunningProcess, start_process, wait_until
from channels_ws.testing import ConnectionClosed, WebSocketClient

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent.parent
PYTHONPATH = [
    TESTS / "integration" / "gunicorn_project",
    TESTS / "websocket" / "ws_project",
    TESTS / "http" / "http_project",
]
WORKER = "channels_core.gunicorn.ChannelsWorker"
LISTENING = r"Listening at: .*http://127\.0\.0\.1:(?P<port>\d+)"
READY = re.compile(r"\[(\d+)\] \[INFO\] Channels server ready")
TIMEOUT = 10


def gunicorn(tmp_path: Path, settings: str, app: str, *args: str) -> RunningProcess:
    """Start a gunicorn arbiter on a free port of 127.0.0.1 with the Channels worker.

    ``HOME`` is *tmp_path*, where gunicorn puts its control socket.
    """
    env = {
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": os.pathsep.join(map(str, PYTHONPATH)),
        "WS_PROJECT_DATA": str(tmp_path),
        "HOME": str(tmp_path),
    }
    command = [sys.executable, "-m", "gunicorn", "-k", WORKER, "-b", "127.0.0.1:0"]
    return start_process([*command, "--graceful-timeout", "5", *args, app], env=env)


def ready_workers(arbiter: RunningProcess, count: int) -> set[int]:
    """The pids of the first *count* workers that logged they were ready."""

    def ready():
        pids = {int(match[1]) for line in arbiter.lines if (match := READY.search(line))}
        return pids if len(pids) >= count else None

    return wait_until(ready, f"{count} ready workers", TIMEOUT)


def get(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a new connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get_unix(path: Path, target: str) -> bytes:
    """One HTTP/1.0 GET over the Unix socket at *path*: the body."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(str(path))
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return response.partition(b"\r\n\r\n")[2]


def answering(port: int, expected: set[int]) -> set[int]:
    """The worker pids that answer ``/pid/``, asked until all of *expected* have answered."""
    seen: set[int] = set()

    def all_answered():
        seen.add(int(get(port, "/pid/")[1]))
        return seen >= expected

    wait_until(all_answered, f"answers from each of {sorted(expected)}", TIMEOUT)
    return seen


def exited_cleanly(arbiter: RunningProcess, pids: set[int]) -> None:
    """Wait until every worker in *pids* has said it exits, and check none failed."""
    wait_until(
        lambda: all(f"Worker exiting (pid: {pid})" in arbiter.output for pid in pids),
        f"workers {sorted(pids)} to exit",
        TIMEOUT,
    )
    for pid in pids:
        assert f"Worker (pid:{pid}) exited with code" not in arbiter.output
        assert f"Worker (pid:{pid}) was sent" not in arbiter.output
        assert f"[{pid}] [INFO] Channels server stopped." in arbiter.output


def test_websocket_project_two_workers_sighup_and_sigterm(tmp_path):
    with gunicorn(
        tmp_path, "gunicorn_project.ws_settings", "gunicorn_project.asgi:application", "-w", "2"
    ) as arbiter:
        port = int(arbiter.wait_for_line(LISTENING).group("port"))
        first = ready_workers(arbiter, 2)
        with WebSocketClient.connect(port, "/echo/") as client:
            client.send_text("hello")
            assert client.receive() == "hello"
            assert client.close() == 1000
        assert answering(port, first) == first

        # SIGHUP: new workers, and the old ones drain: open sockets close with 1001.
        with WebSocketClient.connect(port, "/echo/") as old:
            old.send_text("before")
            assert old.receive() == "before"
            arbiter.popen.send_signal(signal.SIGHUP)
            with pytest.raises(ConnectionClosed) as closed:
                old.receive()
            assert closed.value.code == 1001
        second = ready_workers(arbiter, 4) - first
        assert len(second) == 2
        exited_cleanly(arbiter, first)
        assert answering(port, second) == second
        with WebSocketClient.connect(port, "/echo/") as client:
            client.send_text("after")
            assert client.receive() == "after"

        # SIGTERM: every worker drains, gunicorn exits 0.
        assert arbiter.terminate(signal.SIGTERM, timeout=TIMEOUT) == 0
        for pid in second:
            assert f"[{pid}] [INFO] Draining: no new connections" in arbiter.output
        exited_cleanly(arbiter, second)


def test_http_project_on_tcp_and_unix_sockets_across_sighup(tmp_path):
    app = "channels_core.application:ChannelsApplication()"
    unix = tmp_path / "http.sock"
    with gunicorn(
        tmp_path,
        "gunicorn_project.http_settings",
        app,
        *("-w", "2", "-b", f"unix:{unix}", "--umask", "0o077"),
    ) as arbiter:
        port = int(arbiter.wait_for_line(LISTENING).group("port"))
        first = ready_workers(arbiter, 2)
        assert stat.S_IMODE(unix.stat().st_mode) == 0o700  # Gunicorn's, despite Twisted's 0666
        assert get(port, "/hello/") == (200, b"hello")
        status, body = get(port, "/meta/some%20where/")
        assert status == 200
        assert b'"path": "/meta/some where/"' in body
        assert b'"scheme": "http"' in body
        assert get(port, "/django/") == (200, b"django says hi to /django/")
        assert answering(port, first) == first
        assert int(get_unix(unix, "/pid/")) in first

        # SIGUSR1 has the log files reopened; the workers go on serving.
        arbiter.popen.send_signal(signal.SIGUSR1)
        wait_until(
            lambda: all(
                f"[{pid}] [INFO] Reopened the log files." in arbiter.output for pid in first
            ),
            "the workers to reopen their log files",
            TIMEOUT,
        )
        assert "Draining" not in arbiter.output
        assert answering(port, first) == first

        # The old workers leave the Unix socket's path to the new ones.
        arbiter.popen.send_signal(signal.SIGHUP)
        second = ready_workers(arbiter, 4) - first
        exited_cleanly(arbiter, first)
        assert answering(port, second) == second
        assert int(get_unix(unix, "/pid/")) in second

        assert arbiter.terminate(signal.SIGTERM, timeout=TIMEOUT) == 0
        exited_cleanly(arbiter, second)


def test_an_asgi_application_and_a_quick_sigquit(tmp_path):
    app = "http_project.asgi:application"
    with gunicorn(tmp_path, "http_project.settings", app, "-w", "1") as arbiter:
        port = int(arbiter.wait_for_line(LISTENING).group("port"))
        (first,) = ready_workers(arbiter, 1)
        assert get(port, "/any/") == (200, b"asgi GET /any/ ")
        os.kill(first, signal.SIGQUIT)
        assert len(ready_workers(arbiter, 2)) == 2
        assert f"[{first}] [INFO] Quick shutdown" in arbiter.output
        assert f"Worker exiting (pid: {first})" in arbiter.output
        assert f"Worker (pid:{first}) exited with code" not in arbiter.output
        assert f"[{first}] [INFO] Draining" not in arbiter.output
        assert get(port, "/again/") == (200, b"asgi GET /again/ ")
        assert arbiter.terminate(signal.SIGTERM, timeout=TIMEOUT) == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            "gunicorn_project.missing",
            "The Django settings module 'gunicorn_project.missing' cannot be imported",
        ),
        (
            "gunicorn_project.bad_settings",
            "CHANNELS['OPTIONS']['http']['http_timeout'] is -1",
        ),
    ],
)
def test_a_configuration_error_stops_gunicorn_with_one_sentence(tmp_path, settings, message):
    # One worker: when two fail to boot, gunicorn 27's arbiter can raise on the second one's
    # exit while halting for the first (a traceback and status 1, whatever the worker class).
    app = "channels_core.application:ChannelsApplication()"
    with gunicorn(tmp_path, settings, app, "-w", "1") as arbiter:
        assert arbiter.wait(TIMEOUT) == 3
    assert message in arbiter.output
    assert "Worker failed to boot." in arbiter.output
    assert "Traceback" not in arbiter.output
