"""The ``sms`` plugin is found through its entry point and registers through the public hooks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from channels_core.testing.processes import run

CHANNELS = Path(sys.executable).with_name("channels")


def test_channels_plugins_lists_the_sms_protocol_and_its_channels():
    result = run([CHANNELS, "plugins", "--json"])
    assert result.returncode == 0, result.stderr
    [plugin] = [p for p in json.loads(result.stdout)["plugins"] if p["name"] == "sms"]
    assert plugin["distribution"] == "channels-sms"
    assert plugin["module"] == "channels_sms.plugin"
    assert plugin["hooks"] == ["channels_register_channels", "channels_register_protocols"]
    assert plugin["registered"] == {
        "protocols": ["sms"],
        "channels": ["sms.receive", "sms.send", "sms.status"],
    }


def test_serve_help_shows_the_sms_options():
    result = run([CHANNELS, "serve", "--help"])
    assert result.returncode == 0, result.stderr
    for flag in ("--sms-device", "--sms-cnmi", "--sms-status-reports", "--sms-max-pending"):
        assert flag in result.stdout
