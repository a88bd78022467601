"""The ``channels`` command line, ``manage.py channels`` and the Django app, in subprocesses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from channels_core import hookspecs
from channels_core.cli import CommandRegistry, format_table
from channels_core.exceptions import PluginError
from channels_core.testing.processes import run, write_settings

CHANNELS = Path(sys.executable).parent / "channels"
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("channels_"))


def channels(*args, env=None):
    """Run ``channels`` from the development install."""
    return run([CHANNELS, *args], env=env)


@pytest.fixture
def project(tmp_path):
    """A directory for settings modules, passed to ``--pythonpath``."""
    return tmp_path


def test_plugins_table_lists_core_and_memory():
    result = channels("plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n\n")[0].splitlines()  # the table, not the notes below it
    assert lines[0].split() == ["PLUGIN", "DISTRIBUTION", "VERSION", "HOOKS", "REGISTERED"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert rows["core"].split()[1:3] == ["channels-core", "0.1.0"]
    assert "add_commands, register_consumers" in rows["core"]
    assert "layers: memory" in rows["memory"]
    # Columns are aligned: every row's distribution starts where the header's does.
    column = lines[0].index("DISTRIBUTION")
    # Other first-party plugins may be installed beside these two.
    assert {line[column:].split()[0] for line in lines[2:]} >= {
        "channels-core",
        "channels-memory",
    }


def test_plugins_json():
    result = channels("plugins", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"plugins", "failed", "blocked", "protocols"}
    memory = next(plugin for plugin in report["plugins"] if plugin["name"] == "memory")
    assert memory == {
        "name": "memory",
        "distribution": "channels-memory",
        "version": "0.1.0",
        "module": "channels_memory.plugin",
        "hooks": ["channels_register_layers"],
        "registered": {"layers": ["memory"]},
    }


def test_hooks_json_lists_every_hookspec_with_its_summary():
    result = channels("hooks", "--json")
    assert result.returncode == 0, result.stderr
    report = {hook["name"]: hook for hook in json.loads(result.stdout)}
    assert sorted(report) == HOOKS
    assert "memory" in report["channels_register_layers"]["plugins"]
    assert report["channels_register_layers"]["description"] == (
        "Register channel layer classes under short names."
    )
    assert "memory" not in report["channels_startup"]["plugins"]


def test_hooks_table():
    result = channels("hooks")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["HOOK", "PLUGINS", "DESCRIPTION"]
    assert len(result.stdout.splitlines()) == len(HOOKS) + 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: name a command."),
        (("nonsense",), "invalid choice: 'nonsense'"),
        (("plugins", "--jsn"), "unrecognized arguments: --jsn"),
        (("serve", "no-colon"), "'no-colon' is not of the form module:attribute"),
        (("serve", "--option", "udp"), "'udp' is not of the form PROTOCOL.NAME=VALUE"),
        (("serve", "--option", "nosuch.port=1"), "names the protocol 'nosuch', which is not"),
        (("serve", "--option", "udp.port=1"), "the option 'port', which the protocol 'udp' does"),
        (("worker", "--threads", "many"), "invalid int value: 'many'"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = channels(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_help_exits_0():
    result = channels("--help")
    assert result.returncode == 0
    for command in ("plugins", "hooks", "serve", "worker"):
        assert command in result.stdout


def test_a_settings_module_that_cannot_be_imported_is_a_configuration_error():
    result = channels("--settings", "no_such_settings_module", "plugins")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "The Django settings module 'no_such_settings_module' cannot be imported"
    )
    assert "Traceback" not in result.stderr


def test_bad_channels_settings_are_a_configuration_error(project):
    write_settings(project, "bad_mode", CHANNELS={"MODE": "turbo"})
    result = channels("--pythonpath", project, "--settings", "bad_mode", "serve")
    assert result.returncode == 1
    assert result.stderr.startswith("CHANNELS['MODE'] is 'turbo'; set it to 'inprocess'")
    assert "Traceback" not in result.stderr


def test_worker_with_an_unknown_layer_alias_is_a_configuration_error(project):
    write_settings(project, "one_layer", CHANNEL_LAYERS={"default": {"BACKEND": "memory"}})
    result = channels("--pythonpath", project, "--settings", "one_layer", "worker", "--layer", "x")
    assert result.returncode == 1
    assert "CHANNEL_LAYERS has no alias 'x'" in result.stderr


def test_global_options_are_accepted_after_the_command(project):
    write_settings(project, "blocks_memory", CHANNELS={"PLUGINS_BLOCK": ["memory"]})
    result = channels("plugins", "--json", "--pythonpath", project, "--settings", "blocks_memory")
    assert result.returncode == 0, result.stderr
    assert [blocked["name"] for blocked in json.loads(result.stdout)["blocked"]] == ["memory"]


def test_manage_py_channels_delegates_to_the_same_parser(project):
    write_settings(project, "managed", CHANNELS={"PLUGINS_BLOCK": ["memory"]})
    env = {"DJANGO_SETTINGS_MODULE": "managed"}
    result = run(
        [sys.executable, "-m", "django", "channels", "plugins", "--json", "--pythonpath", project],
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert [blocked["name"] for blocked in json.loads(result.stdout)["blocked"]] == ["memory"]

    usage = run([sys.executable, "-m", "django", "channels", "--pythonpath", project], env=env)
    assert usage.returncode == 2
    assert "channels: error: name a command." in usage.stderr


def test_manage_py_check_reports_bad_channels_settings(project):
    write_settings(project, "bad_layers", CHANNEL_LAYERS={"default": {"BACKEND": ""}})
    result = run(
        [sys.executable, "-m", "django", "check", "--pythonpath", project],
        env={"DJANGO_SETTINGS_MODULE": "bad_layers"},
    )
    assert result.returncode == 1
    assert "(channels_core.E001) CHANNEL_LAYERS['default']['BACKEND'] is ''" in result.stderr

    write_settings(project, "good_layers", CHANNEL_LAYERS={"default": {"BACKEND": "memory"}})
    good = run(
        [sys.executable, "-m", "django", "check", "--pythonpath", project],
        env={"DJANGO_SETTINGS_MODULE": "good_layers"},
    )
    assert good.returncode == 0, good.stderr


def test_setting_changed_resets_settings_registry_and_layers(project):
    write_settings(project, "signal_settings", CHANNELS={"MODE": "inprocess"})
    script = """
import django
django.setup()
from django.test.utils import override_settings
from channels_core import get_channel_layer
from channels_core.plugins import get_registry
from channels_core.settings import get_settings

registry, layer = get_registry(), get_channel_layer()
assert get_settings().mode == "inprocess"
with override_settings(CHANNELS={"MODE": "worker"}):
    assert get_settings().mode == "worker"
    assert get_registry() is not registry
    assert get_channel_layer() is not layer
print("ok")
"""
    result = run(
        [sys.executable, "-c", script],
        env={"DJANGO_SETTINGS_MODULE": "signal_settings", "PYTHONPATH": str(project)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_a_command_registered_twice_names_both_plugins():
    parser = argparse.ArgumentParser()
    cli = CommandRegistry(parser.add_subparsers(), registry=None)
    cli.for_plugin("first").command("sync", help="Sync.", handler=lambda args: 0)
    with pytest.raises(PluginError) as error:
        cli.for_plugin("second").command("sync", help="Sync again.", handler=lambda args: 0)
    assert str(error.value) == (
        "The command 'sync' is registered twice: by plugin 'first' and by plugin 'second'. "
        "Uninstall or block one of them (CHANNELS_PLUGINS_BLOCK)."
    )


def test_format_table_aligns_columns():
    assert format_table(("A", "LONGER"), [("wide cell", "x"), ("y", "z")]) == (
        "A          LONGER\n---------  ------\nwide cell  x\ny          z"
    )


def test_serving_something_neither_a_layer_nor_an_app_is_refused(project):
    write_settings(project, "plain", CHANNEL_LAYERS={"default": {"BACKEND": "memory"}})
    result = channels("--pythonpath", project, "--settings", "plain", "serve", "plain:SECRET_KEY")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "channels serve plain:SECRET_KEY: it is a str, neither a channel layer nor an ASGI "
        "application; name a layer from get_channel_layer(), such as "
        "my_project.asgi:channel_layer, an ASGI application, such as "
        "my_project.asgi:application, or leave it out to serve the 'default' layer."
    )

    missing = channels("--pythonpath", project, "--settings", "plain", "serve", "plain:nothing")
    assert missing.returncode == 1
    assert "channels serve plain:nothing: it cannot be imported" in missing.stderr


def test_plugins_json_says_which_protocols_are_enabled(project):
    report = json.loads(channels("plugins", "--json").stdout)["protocols"]
    assert report["enabled_by"] == "default"
    assert report["enabled"] == ["http", "websocket"]
    assert {"udp", "sms", "webrtc", "http2"} <= set(report["not_enabled"])
    assert report["enable_with"] == "CHANNELS['PROTOCOLS'] or channels serve --protocol NAME"

    write_settings(project, "udp_only", CHANNELS={"PROTOCOLS": ["udp"]})
    result = channels("--pythonpath", project, "--settings", "udp_only", "plugins")
    assert result.returncode == 0, result.stderr
    assert "\nProtocols enabled (CHANNELS['PROTOCOLS']): udp.\n" in result.stdout
    not_enabled = "Installed but not enabled: http, http2, metrics, sms, webrtc, websocket; "
    assert not_enabled in result.stdout
