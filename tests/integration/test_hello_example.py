"""The README's first command: the hello example's worker answers on the memory layer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


def test_the_hello_example_worker_answers_every_name():
    result = subprocess.run(
        [sys.executable, "manage.py", "hello", "Ada", "Grace", "Linus"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(lines[:3]) == ["Hello, Ada!", "Hello, Grace!", "Hello, Linus!"]
    assert lines[3:] == ["Goodbye!"]
    assert "Worker listening on hello" in result.stderr
