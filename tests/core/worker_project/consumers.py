"""Consumers that leave their results as files in ``WORKER_TEST_DIR``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

RELEASE_WAIT = 30.0


def _results() -> Path:
    return Path(os.environ["WORKER_TEST_DIR"])


def _write(name: str, content: dict) -> None:
    # Write then rename, so the test never reads a half-written file.
    temporary = _results() / f".{name}.tmp"
    temporary.write_text(json.dumps(content))
    temporary.rename(_results() / name)


def echo(message) -> None:
    """Record the message as ``<channel>-<n>``."""
    _write(f"{message.channel.name}-{message['n']}", message.content)


def slow(message) -> None:
    """Record ``started``, wait (bounded) for the test to create ``release``, record ``done``."""
    _write("started", message.content)
    deadline = time.monotonic() + RELEASE_WAIT
    while not (_results() / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    _write("done", message.content)


def boom(message) -> None:
    """Fail, as a buggy consumer does."""
    raise RuntimeError(f"boom consumer failed on purpose (n={message.get('n')})")
