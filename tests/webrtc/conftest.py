"""Fixtures for the WebRTC tests: ``channels`` commands of ``webrtc_project`` in subprocesses."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from channels_core.testing.processes import RunningProcess, start_process

PROJECT = Path(__file__).resolve().parent / "webrtc_project"
ENV = {
    "DJANGO_SETTINGS_MODULE": "webrtc_project.settings",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
}
ENDPOINT = "tcp:0:interface=127.0.0.1"
LISTENING = re.compile(r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(\d+)")
START_TIMEOUT = 30.0


class ProjectCommands:
    """Starts ``channels serve`` and ``channels worker`` for ``webrtc_project``.

    Each method returns the :class:`RunningProcess` once it is ready (killed if it never is);
    use it in a ``with`` block so that it is killed when the test ends. *env* is added to the
    project's environment (``WEBRTC_REDIS_URL`` puts the project on a Redis layer).
    """

    def start(self, *args: str, **env: str) -> RunningProcess:
        """``channels ARGS``, not waited for."""
        return start_process(
            [
                sys.executable,
                "-c",
                "import sys; from channels_core.cli import main; sys.exit(main())",
                *args,
            ],
            env={**ENV, **env},
        )

    def _ready(self, process: RunningProcess, pattern: re.Pattern | str) -> re.Match:
        try:
            return process.wait_for_line(pattern, timeout=START_TIMEOUT)
        except BaseException:
            process.__exit__(None, None, None)
            raise

    def serve(self, *args: str, **env: str) -> RunningProcess:
        """``channels serve ARGS`` on a free loopback port; sets ``port`` and ``offer_url``."""
        process = self.start("serve", "--endpoint", ENDPOINT, *args, **env)
        process.port = int(self._ready(process, LISTENING).group(1))
        process.offer_url = f"http://127.0.0.1:{process.port}/webrtc/offer"
        return process

    def worker(self, *args: str, **env: str) -> RunningProcess:
        """``channels worker ARGS``, once it listens."""
        process = self.start("worker", *args, **env)
        self._ready(process, "Worker listening on")
        return process


@pytest.fixture(scope="session")
def webrtc_project() -> ProjectCommands:
    """Start the test project's ``channels serve`` and ``channels worker`` processes."""
    return ProjectCommands()
