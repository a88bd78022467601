"""``manage.py runserver`` in real processes: a page, a static file, a routed consumer and a
WebSocket on one port; SIGTERM with --noreload; Django's autoreloader restarting on a change."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from channels_core.testing.processes import RunningProcess, free_port, run, start_process
from channels_ws.testing import WebSocketClient

SITE = Path(__file__).resolve().parent / "site_project"
TIMEOUT = 10

pytestmark = pytest.mark.slow


def listening(port: int) -> str:
    return rf"http listening on tcp:{port}:interface=127\.0\.0\.1"


def get(port: int, path: str):
    """One GET on a new connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def count_lines(process: RunningProcess, pattern: str) -> int:
    """How many output lines so far match *pattern*."""
    return sum(1 for line in list(process.lines) if re.search(pattern, line))


def runserver(port: int, *args: str, cwd: Path = SITE) -> RunningProcess:
    """``manage.py runserver 127.0.0.1:PORT ARGS`` with output collected."""
    return start_process(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", *args], cwd=cwd
    )


def test_runserver_serves_pages_static_files_consumers_and_websockets_and_stops_on_sigterm():
    port = free_port()
    with runserver(port, "--noreload") as server:
        server.wait_for_line(listening(port))
        assert "Starting Channels development server at http://127.0.0.1:" in server.output
        assert get(port, "/page/") == (200, b"<h1>site page</h1>")
        assert get(port, "/static/site/site.css") == (200, b"body { color: #123456; }\n")
        assert get(port, "/static/site/missing.css")[0] == 404
        assert get(port, "/hello/?x=1") == (200, b"hello x=1|")
        with WebSocketClient.connect(port, "/ws/echo/") as client:
            client.send_text("echo me")
            assert client.receive() == "echo me"
            assert client.close() == 1000
        assert server.terminate(signal.SIGTERM) == 0
    assert "Channels server stopped." in server.output


def test_nostatic_leaves_static_urls_to_django():
    port = free_port()
    with runserver(port, "--noreload", "--nostatic") as server:
        server.wait_for_line(listening(port))
        assert get(port, "/static/site/site.css")[0] == 404
        assert get(port, "/page/")[0] == 200
        assert server.terminate() == 0


@pytest.mark.parametrize(("flags", "status"), [((), 404), (("--insecure",), 200)])
def test_without_debug_static_files_need_insecure(flags, status):
    port = free_port()
    settings = "--settings=site_project.production_settings"
    with runserver(port, "--noreload", settings, *flags) as server:
        server.wait_for_line(listening(port))
        assert get(port, "/static/site/site.css")[0] == status
        assert get(port, "/hello/")[0] == 200
        assert server.terminate() == 0


def test_serving_static_files_without_staticfiles_is_a_clear_error():
    http_project = SITE.parents[1] / "http" / "http_project"
    result = run(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            "--pythonpath",
            http_project,
            "--settings",
            "http_project.settings",
            "serve",
            "--http-static",
            "true",
            "--endpoint",
            "tcp:0:interface=127.0.0.1",
        ]
    )
    assert result.returncode == 1
    assert (
        "The http option static is on, but django.contrib.staticfiles is not in INSTALLED_APPS; "
        "add it, or turn the option off." in result.stderr
    )


def test_a_bad_address_is_a_clear_error():
    result = run([sys.executable, "manage.py", "runserver", "127.0.0.1:http"], cwd=SITE)
    assert result.returncode == 1
    assert '"127.0.0.1:http" is not a valid port number or address:port pair.' in result.stderr


def test_a_busy_port_is_a_clear_error():
    port = free_port()
    with runserver(port, "--noreload") as first:
        first.wait_for_line(listening(port))
        result = run(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=SITE,
        )
        assert result.returncode == 1
        assert "Error: " in result.stderr
        assert "Address already in use" in result.stderr
        assert first.terminate() == 0


def test_the_reloader_restarts_the_server_when_a_python_file_changes(tmp_path):
    project = tmp_path / "site_project"
    shutil.copytree(SITE, project, ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    # A session of its own, so the reloader's child process can be stopped with its parent.
    popen = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        start_new_session=True,
    )
    with RunningProcess(popen) as server:
        try:
            server.wait_for_line(listening(port), timeout=30)
            assert get(port, "/hello/") == (200, b"hello |")
            consumers = project / "site_project" / "consumers.py"
            consumers.write_text(
                consumers.read_text().replace('f"hello {query}', 'f"reloaded {query}')
            )
            # The reloader polls once a second and notices a change only to a file it has
            # already seen: touch the file until it reports the change (bounded).
            for _ in range(30):
                os.utime(consumers)
                try:
                    server.wait_for_line(r"consumers\.py changed, reloading", timeout=1)
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError(f"The reloader never noticed the change:\n{server.output}")
            # The new child logs its own listening line.
            deadline = time.monotonic() + 30
            while count_lines(server, listening(port)) < 2:
                assert time.monotonic() < deadline, f"No restart:\n{server.output}"
                time.sleep(0.1)
            assert get(port, "/hello/") == (200, b"reloaded |")
        finally:
            os.killpg(popen.pid, signal.SIGTERM)
            popen.wait(TIMEOUT)
