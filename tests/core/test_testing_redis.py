"""``channels_core.testing.redis`` on a machine without ``redis-server``: the tests that
need it are skipped, saying what to install, and nothing is left behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from channels_core.testing.processes import run
from channels_core.testing.redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]
MISSING = (
    "redis-server is not installed or not on PATH (Debian: apt-get install -y redis-server; "
    "bash .ci/run installs what the tests need)"
)


@pytest.fixture
def bare_path(tmp_path):
    """A directory with nothing but ``python``, to be the whole ``PATH``."""
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "python").symlink_to(sys.executable)
    return directory


def test_the_redis_tests_are_skipped_without_redis_server(bare_path):
    # The session's shared server, servers the tests start and stop, and a Redis Cluster.
    result = run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:randomly"),
            *("-p", "no:cacheprovider", "tests/layers/test_redis_layer.py"),
            "tests/layers/test_redis_cluster.py",
            "tests/layers/test_redis_presence_history.py",
        ],
        env={"PATH": str(bare_path)},
        cwd=ROOT,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    assert " skipped" in summary, output
    assert "failed" not in summary, output
    assert "error" not in summary, output
    assert MISSING in result.stdout
    assert "ResourceWarning" not in output
    assert "Traceback" not in output


def test_a_missing_redis_server_skips_before_making_anything(bare_path, monkeypatch):
    monkeypatch.setenv("PATH", str(bare_path))
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        RedisServer()


def test_a_server_that_does_not_start_leaves_no_directory(tmp_path, monkeypatch):
    # A redis-server that exits at once, as one with a bad configuration does.
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(fake.parent), os.environ["PATH"]]))
    server = RedisServer()
    assert server.program == str(fake)
    assert server.directory.is_dir()
    with pytest.raises(RuntimeError, match="redis-server exited with code 3"), server:
        pass
    assert not server.directory.exists()
