"""Where network namespaces cannot be made, the network-fault tests are skipped, saying why.

Each case runs the layer's network-fault tests in a child pytest: without ``ip`` and ``nft``
on ``PATH``, and as root without the capabilities a namespace needs (``setpriv``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from channels_core.testing.processes import run

ROOT = Path(__file__).resolve().parents[2]
FAULT_TESTS = "tests/netns/test_layer_network_faults.py"


def child_pytest(*prefix: str, env: dict[str, str] | None = None) -> str:
    """Run the network-fault tests in a child pytest; its output, once it passed."""
    result = run(
        [
            *prefix,
            *(sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:randomly"),
            *("-p", "no:cacheprovider", FAULT_TESTS),
        ],
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    assert "3 skipped" in summary, output
    assert "passed" not in summary, output
    assert "Traceback" not in output
    return result.stdout


def test_without_ip_and_nft_the_tests_are_skipped_saying_what_to_install(tmp_path):
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(sys.executable)
    output = child_pytest(env={"PATH": str(bare)})
    assert (
        "ip is not installed or not on PATH (Debian: apt-get install -y iproute2; "
        "bash .ci/run installs what the tests need)"
    ) in output


def test_without_the_capabilities_of_root_the_tests_are_skipped_saying_why():
    if os.geteuid() != 0:
        pytest.skip("needs root, to drop its capabilities for the child")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (Debian: apt-get install util-linux)")
    drop = "-net_admin,-sys_admin"
    output = child_pytest(setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}")
    assert "Cannot create a network namespace (" in output
    assert "the network-fault tests need root (CAP_NET_ADMIN) and iproute2." in output
