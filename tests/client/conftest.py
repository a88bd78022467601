"""The browser client's test project served by real ``channels serve`` processes (the headless
Chromium sessions that run channels.js come from tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from channels_core.testing.processes import start_process

PROJECT = Path(__file__).resolve().parent / "client_project"
LISTENING = r"http listening on .* → 127\.0\.0\.1:(?P<port>\d+)"


def _serve(port: int):
    """The test project served on *port* (0: a free one); ``.port`` and ``.url`` once ready."""
    channels = Path(sys.executable).parent / "channels"
    settings = ["--settings", "client_project.settings", "--pythonpath", PROJECT]
    process = start_process([channels, "serve", *settings, "-b", "127.0.0.1", "-p", str(port)])
    try:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        process.wait_for_line(r"Channels server ready")
    except BaseException:
        process.__exit__(None, None, None)
        raise
    process.url = f"http://127.0.0.1:{process.port}"
    return process


@pytest.fixture(scope="module")
def server():
    """One server for the module, on a free port."""
    with _serve(0) as process:
        yield process
        assert process.terminate() == 0, process.output


@pytest.fixture
def serve():
    """Start servers on demand, ``serve(port)``; those still running at the end are killed."""
    started = []

    def start(port: int = 0):
        process = _serve(port)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.__exit__(None, None, None)
