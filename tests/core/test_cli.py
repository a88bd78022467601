"""The ``channels`` command line, ``manage.py channels`` and the Django app, in subprocesses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from channels_core import hookspecs
from channels_core.cli import BooleanFlag, CommandParser, CommandRegistry, format_table
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
    result = channels("plugins", env={"COLUMNS": "1000"})  # wide enough for one line a row
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
    result = channels("hooks", env={"COLUMNS": "1000"})  # wide enough for one line a row
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


@pytest.mark.parametrize(
    ("command", "sentence"),
    [
        (
            ("channels", "serve", "--mode", "worker"),
            "Worker mode needs a layer that crosses processes, so that channels worker "
            "processes receive the events; the layer 'default' is InMemoryChannelLayer, which "
            "lives in one process. Use channels-ipc (the processes of one machine) or "
            "channels-redis (several machines), or run the consumers in this process (--mode "
            "inprocess, CHANNELS['MODE'] = 'inprocess').",
        ),
        (
            ("channels", "worker"),
            "A worker needs a layer that crosses processes, so that it receives what the "
            "protocol servers send; the layer 'default' is InMemoryChannelLayer, which lives in "
            "one process. Use channels-ipc (the processes of one machine) or channels-redis "
            "(several machines), or let channels serve run the consumers itself (in-process "
            "mode, the default).",
        ),
        (("manage.py", "runworker"), "CommandError: A worker needs a layer that crosses"),
    ],
    ids=["serve", "worker", "runworker"],
)
def test_worker_mode_on_the_memory_layer_is_refused_at_start_up(project, command, sentence):
    routing = project / "memory_routing.py"
    routing.write_text(
        "from channels_core import route\n\n"
        "def echo(message):\n    pass\n\n"
        "channel_routing = [route('websocket.receive', echo)]\n"
    )
    layers = {"default": {"BACKEND": "memory", "ROUTING": "memory_routing.channel_routing"}}
    write_settings(project, "memory_layer", CHANNEL_LAYERS=layers)
    if command[0] == "manage.py":
        result = run(
            [sys.executable, "-m", "django", *command[1:], "--pythonpath", project],
            env={"DJANGO_SETTINGS_MODULE": "memory_layer"},
        )
    else:
        result = channels("--pythonpath", project, "--settings", "memory_layer", *command[1:])
    assert result.returncode == 1
    assert sentence in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stderr


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

    (project / "good_routing.py").write_text("routes = []\n")
    write_settings(
        project,
        "good_layers",
        CHANNEL_LAYERS={"default": {"BACKEND": "memory", "ROUTING": "good_routing.routes"}},
    )
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
    result = channels(
        "--pythonpath", project, "--settings", "udp_only", "plugins", env={"COLUMNS": "1000"}
    )
    assert result.returncode == 0, result.stderr
    assert "\nProtocols enabled (CHANNELS['PROTOCOLS']): udp.\n" in result.stdout
    not_enabled = "Installed but not enabled: http, http2, metrics, sms, webrtc, websocket; "
    assert not_enabled in result.stdout


@pytest.mark.parametrize("width", [80, 200])
def test_the_plugins_and_hooks_tables_fit_the_terminal(width):
    for command in ("plugins", "hooks"):
        result = channels(command, env={"COLUMNS": str(width)})
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(map(len, lines)) <= width, result.stdout
        # Every row is there, its first cell at the start of a line; wrapped cells go on
        # lines that start blank.
        first_cells = {line.split()[0] for line in lines[2:] if line[:1].strip()}
        if command == "plugins":
            assert {"core", "memory", "http", "websocket"} <= first_cells
            assert "Installed but not enabled:" in result.stdout
        else:
            assert set(HOOKS) <= first_cells
    # --json is not wrapped.
    report = json.loads(channels("plugins", "--json", env={"COLUMNS": str(width)}).stdout)
    assert {"core", "memory"} <= {plugin["name"] for plugin in report["plugins"]}


def test_format_table_wraps_the_widest_columns_to_the_width():
    rows = [("core", "add_commands, register_consumers, register_channels, shutdown")]
    table = format_table(("PLUGIN", "HOOKS"), rows, width=30)
    assert table.splitlines() == [
        "PLUGIN  HOOKS",
        "------  ----------------------",
        "core    add_commands,",
        "        register_consumers,",
        "        register_channels,",
        "        shutdown",
    ]
    assert format_table(("PLUGIN", "HOOKS"), rows, width=200) == format_table(
        ("PLUGIN", "HOOKS"), rows
    )


def test_serve_and_worker_without_a_settings_module_say_so():
    sentence = (
        "No Django settings module was given, so there is no routing to run: set "
        "DJANGO_SETTINGS_MODULE or pass --settings my_project.settings (and --pythonpath "
        "with the project's directory)."
    )
    for command in ("serve", "worker"):
        result = channels(command, env={"DJANGO_SETTINGS_MODULE": ""})
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == sentence
        assert "Traceback" not in result.stderr


def test_pythonpath_may_be_given_several_times_and_the_first_is_searched_first(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    # The same module in both: the first directory's wins. A module only in the second.
    (first / "which_block.py").write_text("BLOCK = ['memory']\n")
    (second / "which_block.py").write_text("BLOCK = ['ipc']\n")
    (second / "second_only.py").write_text("LAYERS = {'default': {'BACKEND': 'ipc'}}\n")
    (first / "two_paths.py").write_text(
        "from second_only import LAYERS\n"
        "from which_block import BLOCK\n"
        "SECRET_KEY = 'x'\n"
        "INSTALLED_APPS = ['channels_core']\n"
        "CHANNEL_LAYERS = LAYERS\n"
        "CHANNELS = {'PLUGINS_BLOCK': BLOCK}\n"
    )
    result = channels(
        "--pythonpath",
        first,
        "plugins",
        "--json",
        "--pythonpath",
        second,
        "--settings",
        "two_paths",
    )
    assert result.returncode == 0, result.stderr
    assert [blocked["name"] for blocked in json.loads(result.stdout)["blocked"]] == ["memory"]


def test_a_boolean_flag_alone_is_true_and_leaves_the_next_word_to_the_positionals():
    parser = CommandParser(prog="test")
    parser.add_argument("--proxy-headers", action=BooleanFlag, default=None)
    parser.add_argument("--root-path", default="")
    parser.add_argument("app", nargs="?")
    cases = {
        ("--proxy-headers",): (True, None),
        ("--proxy-headers", "my.asgi:application"): (True, "my.asgi:application"),
        ("--proxy-headers", "--root-path", "/a", "x:y"): (True, "x:y"),
        ("--proxy-headers", "off", "x:y"): (False, "x:y"),
        ("--proxy-headers=yes", "x:y"): (True, "x:y"),
        ("x:y", "--proxy-headers", "0"): (False, "x:y"),
        ("x:y",): (None, "x:y"),
    }
    for argv, expected in cases.items():
        args = parser.parse_args(list(argv))
        assert (args.proxy_headers, args.app) == expected, argv
