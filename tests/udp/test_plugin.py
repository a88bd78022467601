"""The udp plugin's registration and option checks, in process."""

from __future__ import annotations

import pytest
from django.test import override_settings

from channels_core.exceptions import ImproperlyConfigured
from channels_core.options import check_options
from channels_core.plugins import Registry, get_registry
from channels_udp import plugin
from channels_udp.plugin import OPTIONS


def test_registers_the_protocol_and_its_channels():
    registry = Registry.from_plugins({"udp": plugin})
    spec = registry.protocols["udp"].obj
    assert spec.emits == ("udp.receive",)
    assert spec.consumes == ("udp.send!",)
    assert {option.name: option.flags for option in spec.options} == {
        "listen": ("--udp",),
        "max_datagram_size": ("--udp-max-datagram-size",),
        "rate": ("--udp-rate",),
        "burst": ("--udp-burst",),
        "client_timeout": ("--udp-client-timeout",),
        "max_clients": ("--udp-max-clients",),
    }
    assert registry.channels["udp.receive"].obj.keys == (
        "reply_channel",
        "data",
        "client",
        "server",
    )
    assert registry.channels["udp.send!"].obj.keys == ("data",)


def test_is_installed_as_an_entry_point():
    info = get_registry().plugins["udp"]
    assert info.distribution == "channels-udp"
    assert info.module == "channels_udp.plugin"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"listen": "127.0.0.1:9000"}, r"\['listen'\] is '127.0.0.1:9000'; set it to a list"),
        (
            {"listen": ["localhost:9000"]},
            r"\['listen'\] is \['localhost:9000'\]; 'localhost:9000' is not",
        ),
        ({"max_datagram_size": 0}, r"\['max_datagram_size'\] is 0; set it to a number of bytes"),
        ({"max_datagram_size": 70000}, r"\['max_datagram_size'\] is 70000; .* from 1 to 65507"),
        ({"rate": -1}, r"\['rate'\] is -1; set it to datagrams per second"),
        ({"rate": "fast"}, r"\['rate'\] is 'fast'"),
        ({"burst": 0}, r"\['burst'\] is 0; set it to a whole number of datagrams"),
        ({"client_timeout": 0}, r"\['client_timeout'\] is 0; set it to a positive number"),
        ({"max_clients": 1.5}, r"\['max_clients'\] is 1.5; set it to a whole number"),
    ],
)
def test_bad_options_are_one_clear_sentence(options, message):
    with pytest.raises(ImproperlyConfigured, match=r"CHANNELS\['OPTIONS'\]\['udp'\]" + message):
        check_options("udp", OPTIONS, options)


def test_good_options_pass():
    check_options(
        "udp",
        OPTIONS,
        {
            "listen": ["127.0.0.1:9000", "[::1]:0"],
            "max_datagram_size": 1200,
            "rate": 50.5,
            "burst": None,
            "client_timeout": 1,
            "max_clients": 10,
        },
    )


def test_bad_settings_fail_when_the_registry_is_configured():
    bad = {"PROTOCOLS": ["udp"], "OPTIONS": {"udp": {"rate": -5}}}
    with override_settings(CHANNELS=bad), pytest.raises(ImproperlyConfigured, match="'rate'"):
        get_registry()
