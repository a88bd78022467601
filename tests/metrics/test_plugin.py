"""The ``metrics`` protocol's registration and its ``listen`` option, without a server."""

from __future__ import annotations

import pytest

from channels_core import ImproperlyConfigured
from channels_core.options import check_options
from channels_core.plugins import Registry
from channels_metrics import plugin


@pytest.mark.parametrize(
    ("address", "expected", "endpoint"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100), "tcp:9100:interface=127.0.0.1"),
        ("0.0.0.0:0", ("0.0.0.0", 0), "tcp:0:interface=0.0.0.0"),
        ("[::1]:9100", ("::1", 9100), "tcp:9100:interface=\\:\\:1"),
    ],
)
def test_listen_addresses_and_their_endpoints(address, expected, endpoint):
    assert plugin.parse_listen(address) == expected
    assert plugin.endpoint(address) == endpoint


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("localhost:9100", "is not an address to serve metrics on: write HOST:PORT"),
        ("9100", "is not an address to serve metrics on"),
        ("127.0.0.1:http", "is not an address to serve metrics on"),
        ("127.0.0.1:70000", "has the port 70000: use a port between 0 and 65535"),
    ],
)
def test_a_bad_listen_setting_is_one_sentence(address, said):
    with pytest.raises(ImproperlyConfigured) as refused:
        check_options("metrics", plugin.OPTIONS, {"listen": address})
    message = str(refused.value)
    assert message.startswith(f"CHANNELS['OPTIONS']['metrics']['listen'] is {address!r}; ")
    assert said in message
    assert "\n" not in message


def test_the_protocol_registers_with_its_option_and_nothing_it_emits():
    registry = Registry.from_plugins({"metrics": plugin})
    spec = registry.protocols["metrics"].obj
    assert (spec.emits, spec.consumes) == ((), ())
    assert spec.option_defaults() == {"listen": "127.0.0.1:9100"}
    assert spec.options[0].flags == ("--metrics",)
