"""The plugin manager against real, installed distributions.

Three throwaway distributions (tests/plugins/broken, duplicate_layer, misspelt) are installed
into one throwaway virtualenv; each test blocks the ones it is not about with
``CHANNELS_PLUGINS_BLOCK`` and checks the ``channels`` command line in a subprocess.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from channels_core.plugins import get_plugin_manager
from channels_core.testing.processes import build_venv, run, write_settings

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
TROUBLE = ("broken", "duplicate_layer", "misspelt")
CHANNELS = Path(sys.executable).parent / "channels"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv that sees the development install, plus the three troublesome plugins."""
    return build_venv(
        tmp_path_factory.mktemp("plugin-manager") / "venv",
        install=[PLUGINS / name for name in TROUBLE],
        scripts={"channels": "channels_core.cli:main"},
    )


def channels(venv, *args, allow=(), env=None):
    """Run the venv's ``channels`` with every troublesome plugin blocked except *allow*."""
    blocked = ",".join(name for name in TROUBLE if name not in allow)
    return run(
        [venv.script("channels"), *args],
        env={"CHANNELS_PLUGINS_BLOCK": blocked, **(env or {})},
    )


def test_loads_core_and_memory_from_the_development_install():
    manager, infos, failures = get_plugin_manager()
    assert infos["core"].distribution == "channels-core"
    assert infos["memory"].distribution == "channels-memory"
    assert "channels_register_layers" in infos["memory"].hooks
    assert manager.get_plugin("core") is not None
    assert failures == []


def test_a_plugin_that_fails_to_import_is_named_and_the_rest_load(venv):
    result = channels(venv, "plugins", "--json", allow=["broken"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # The kernel's own plugins load; other first-party plugins may be installed too.
    assert {plugin["name"] for plugin in report["plugins"]} >= {"core", "memory"}
    assert report["failed"] == [
        {
            "name": "broken",
            "distribution": "channels-broken",
            "version": "0.0.1",
            "error": "RuntimeError: channels_broken is broken on purpose",
        }
    ]
    assert "Plugin 'broken' from channels-broken 0.0.1 failed to import" in result.stderr

    human = channels(venv, "plugins", allow=["broken"])
    assert "Failed to import 'broken' from channels-broken 0.0.1: RuntimeError" in human.stdout


def test_a_failing_plugin_enabled_in_settings_stops_start_up(venv, tmp_path):
    write_settings(tmp_path, "enables_broken", CHANNELS={"PROTOCOLS": ["broken"]})
    result = channels(
        venv,
        "--pythonpath",
        tmp_path,
        "--settings",
        "enables_broken",
        "plugins",
        allow=["broken"],
    )
    assert result.returncode == 1
    assert "Plugin 'broken' from channels-broken 0.0.1 failed to import" in result.stderr
    assert "It is enabled in your settings" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_duplicate_layer_name_names_both_plugins(venv):
    result = channels(venv, "plugins", allow=["duplicate_layer"])
    assert result.returncode == 1
    # Above it, the log says which plugins are blocked.
    assert result.stderr.splitlines()[-1] == (
        "The layer 'memory' is registered twice: by plugin 'duplicate_layer' "
        "(channels-duplicate-layer 0.0.1) and by plugin 'memory' (channels-memory 0.1.0). "
        "Uninstall or block one of them (CHANNELS_PLUGINS_BLOCK)."
    )


def test_the_environment_blocks_plugins(venv):
    result = channels(venv, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # The kernel's own plugins load; other first-party plugins may be installed too.
    assert {plugin["name"] for plugin in report["plugins"]} >= {"core", "memory"}
    assert [blocked["name"] for blocked in report["blocked"]] == sorted(TROUBLE)
    assert report["blocked"][0]["distribution"] == "channels-broken"


def test_settings_block_plugins(venv, tmp_path):
    write_settings(tmp_path, "blocks", CHANNELS={"PLUGINS_BLOCK": list(TROUBLE)})
    result = channels(
        venv,
        "--pythonpath",
        tmp_path,
        "--settings",
        "blocks",
        "plugins",
        "--json",
        allow=TROUBLE,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [blocked["name"] for blocked in report["blocked"]] == sorted(TROUBLE)
    assert report["failed"] == []


def test_a_misspelt_hook_implementation_fails_loudly(venv):
    result = channels(venv, "plugins", allow=["misspelt"])
    assert result.returncode == 1
    assert "A plugin does not fit the hook specifications" in result.stderr
    assert "channels_register_layer" in result.stderr
    assert "channels_misspelt" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_enabled_protocol_that_is_not_installed_says_what_to_install(tmp_path):
    write_settings(
        tmp_path,
        "wants_udp",
        CHANNEL_LAYERS={"default": {"BACKEND": "memory", "ROUTING": []}},
        CHANNELS={"PROTOCOLS": ["udp"]},
    )
    # channels-udp is installed in the development environment: blocking it hides it.
    result = run(
        [CHANNELS, "--pythonpath", tmp_path, "--settings", "wants_udp", "serve"],
        env={"CHANNELS_PLUGINS_BLOCK": "udp"},
    )
    assert result.returncode == 1
    # The line before it logs the block.
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "CHANNELS['PROTOCOLS'] enables 'udp', which is not installed: pip install channels-udp "
        "(installed protocols: "
    )


def test_trace_switch_logs_hook_calls(venv):
    result = channels(venv, "-v", "2", "plugins", env={"CHANNELS_TRACE_HOOKS": "1"})
    assert result.returncode == 0, result.stderr
    assert "channels_core.plugins:" in result.stderr
    assert "channels_register_layers" in result.stderr
    assert "channels_add_commands" in result.stderr

    quiet = channels(venv, "-v", "2", "plugins")
    assert "channels_register_layers" not in quiet.stderr
