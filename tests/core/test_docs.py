"""Every hook, setting key and CLI command is documented; every hook has a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from channels_core import hookspecs
from channels_core.cli import build_parser
from channels_core.layers import BaseChannelLayer
from channels_core.plugins import get_registry
from channels_core.settings import CHANNELS_KEYS, LAYER_KEYS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if name.startswith("channels_") and inspect.isfunction(value)
)


def _headings(path: Path) -> set[str]:
    return set(re.findall(r"^#+ (.+?)\s*$", path.read_text(), flags=re.MULTILINE))


def test_there_are_hooks_in_every_family():
    assert {
        "channels_configure",
        "channels_register_layers",
        "channels_register_protocols",
        "channels_register_consumers",
        "channels_register_channels",
        "channels_add_commands",
        "channels_startup",
        "channels_shutdown",
    } <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_in_the_hook_reference(hook):
    assert hook in _headings(DOCS / "hooks.md"), f"add a '### {hook}' section to docs/hooks.md"
    assert getattr(hookspecs, hook).__doc__, f"{hook} needs a docstring"
    assert "Since " in getattr(hookspecs, hook).__doc__


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    users = [
        path
        for path in (ROOT / "tests").rglob("test_*.py")
        if path.name != Path(__file__).name and hook in path.read_text()
    ]
    assert users, f"no test under tests/ exercises {hook}"


SETTINGS_KEYS = sorted(
    {*CHANNELS_KEYS, *LAYER_KEYS, *BaseChannelLayer.base_config_keys, "CHANNELS_PLUGINS_BLOCK"}
)


@pytest.mark.parametrize("key", SETTINGS_KEYS)
def test_every_setting_key_is_documented(key):
    assert f"`{key}`" in (DOCS / "settings.md").read_text(), f"document `{key}` in docs/settings.md"


def _commands() -> list[str]:
    parser = build_parser(get_registry())
    for action in parser._subparsers._group_actions:
        return sorted(action.choices)
    return []


def test_every_cli_command_is_documented():
    commands = _commands()
    assert {"plugins", "hooks", "worker", "serve", "delay"} <= set(commands)
    headings = _headings(DOCS / "cli.md")
    for command in [*commands, "runworker (manage.py)", "rundelay (manage.py)"]:
        assert command in headings, f"add a '## {command}' section to docs/cli.md"


def test_every_cli_option_is_documented():
    text = (DOCS / "cli.md").read_text()
    parser = build_parser(get_registry())
    for action in parser._subparsers._group_actions:
        for name, subparser in action.choices.items():
            for option in subparser._actions:
                for flag in option.option_strings:
                    if flag.startswith("--") and flag != "--help":
                        assert flag in text, f"document {flag} of '{name}' in docs/cli.md"
