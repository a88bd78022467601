"""CHANNEL_LAYERS and CHANNELS are checked at start-up, with one sentence per mistake."""

from __future__ import annotations

import pytest

from channels_core.exceptions import ImproperlyConfigured
from channels_core.settings import parse_settings


def test_defaults_are_one_memory_layer_in_process():
    settings = parse_settings()
    assert settings.layer("default").backend == "memory"
    assert settings.mode == "inprocess"
    assert settings.protocols is None
    assert settings.required_plugins == {"memory"}


def test_a_full_configuration_is_read():
    settings = parse_settings(
        {
            "default": {
                "BACKEND": "memory",
                "ROUTING": "project.routing.routes",
                "CONFIG": {"capacity": 10},
                "TEST_CONFIG": {"capacity": 5},
            },
            "other": {"BACKEND": "my.module.Layer"},
        },
        {
            "PROTOCOLS": ["http", "websocket"],
            "MODE": "worker",
            "PLUGINS_BLOCK": ["sms"],
            "OPTIONS": {"udp": {"max_datagram_size": 1200}},
        },
    )
    assert settings.layer("default").routing == "project.routing.routes"
    assert settings.layer("default").config == {"capacity": 10}
    assert settings.layer("default").test_config == {"capacity": 5}
    assert settings.protocols == ("http", "websocket")
    assert settings.mode == "worker"
    assert settings.plugins_block == ("sms",)
    assert settings.protocol_options("udp") == {"max_datagram_size": 1200}
    assert settings.protocol_options("http") == {}
    # A dotted-path backend is not a plugin name, so it is not required to load as one.
    assert settings.required_plugins == {"http", "websocket", "memory"}


@pytest.mark.parametrize(
    ("layers", "channels", "fragment"),
    [
        ({}, None, "CHANNEL_LAYERS is {}; it must be a non-empty dict"),
        ({"default": "memory"}, None, r"CHANNEL_LAYERS\['default'\] is 'memory'"),
        ({"default": {"BACKEND": ""}}, None, r"\['BACKEND'\] is ''"),
        ({"default": {"BACKEND": "memory", "HOSTS": []}}, None, "unknown key 'HOSTS'"),
        ({"default": {"BACKEND": "memory", "CONFIG": []}}, None, r"\['CONFIG'\] is \[\]"),
        ({"default": {"BACKEND": "memory", "ROUTING": 3}}, None, r"\['ROUTING'\] is 3"),
        (None, ["http"], "CHANNELS is \\['http'\\]"),
        (None, {"PROTOCOL": ["http"]}, "unknown key 'PROTOCOL'"),
        (None, {"PROTOCOLS": "http"}, r"CHANNELS\['PROTOCOLS'\] is 'http'; it must be a list"),
        (None, {"MODE": "threads"}, r"CHANNELS\['MODE'\] is 'threads'; set it to 'inprocess'"),
        (None, {"OPTIONS": {"udp": 3}}, r"CHANNELS\['OPTIONS'\] is"),
        (None, {"SESSION_ENGINE": 3}, r"CHANNELS\['SESSION_ENGINE'\] is 3"),
    ],
)
def test_bad_settings_fail_with_one_sentence(layers, channels, fragment):
    with pytest.raises(ImproperlyConfigured, match=fragment):
        parse_settings(layers, channels)


def test_an_unknown_alias_lists_the_configured_ones():
    settings = parse_settings({"default": {"BACKEND": "memory"}})
    with pytest.raises(ImproperlyConfigured, match=r"no alias 'fast'.*\['default'\]"):
        settings.layer("fast")
