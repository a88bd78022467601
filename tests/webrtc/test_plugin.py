"""The ``webrtc`` plugin's registration, options, offer parsing and loopback-only helpers."""

from __future__ import annotations

import json

import aioice.ice
import pytest
from django.test import override_settings

from channels_core.exceptions import ImproperlyConfigured
from channels_core.options import check_options
from channels_core.plugins import get_registry
from channels_webrtc.ice import configuration, gathering_on
from channels_webrtc.plugin import OPTIONS
from channels_webrtc.signalling import OfferError, parse_offer
from channels_webrtc.testing import foreign_addresses, loopback_peer, make_offer

OFFER_SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"


def test_the_protocol_and_its_channels_are_registered_through_the_entry_point():
    registry = get_registry()
    assert registry.protocols["webrtc"].plugin == "webrtc"
    spec = registry.protocols["webrtc"].obj
    assert spec.emits == ("webrtc.connect", "webrtc.receive", "webrtc.disconnect")
    assert set(spec.consumes) == {"webrtc.send!", "webrtc.offer"}
    assert {option.name for option in spec.options} == {
        "ice_servers",
        "host_addresses",
        "max_message_size",
        "max_peers",
        "connect_timeout",
    }
    assert {"webrtc.connect", "webrtc.receive", "webrtc.send!", "webrtc.offer"} <= set(
        registry.channels
    )
    assert "WebRTCSignallingConsumer" in registry.consumers
    assert "webrtc_offer_consumer" in registry.consumers


@pytest.mark.parametrize(
    ("options", "fix"),
    [
        ({"max_peers": 0}, "positive whole number"),
        ({"max_message_size": "big"}, "positive whole number"),
        ({"connect_timeout": -1}, "positive number of seconds"),
        ({"ice_servers": "stun:stun.example.org"}, "list of URLs"),
        ({"ice_servers": ["http://example.org"]}, "list of URLs"),
        ({"host_addresses": "127.0.0.1"}, "list of IP addresses"),
    ],
)
def test_bad_options_stop_start_up_naming_key_value_and_fix(options, fix):
    with pytest.raises(ImproperlyConfigured, match=fix) as caught:
        check_options("webrtc", OPTIONS, options)
    key = next(iter(options))
    assert f"CHANNELS['OPTIONS']['webrtc'][{key!r}] is {options[key]!r}" in str(caught.value)


def test_the_registry_checks_the_settings():
    with (
        override_settings(CHANNELS={"OPTIONS": {"webrtc": {"max_peers": -3}}}),
        pytest.raises(ImproperlyConfigured, match="max_peers"),
    ):
        get_registry()


def test_good_options_pass():
    check_options(
        "webrtc",
        OPTIONS,
        {
            "ice_servers": ["stun:stun.example.org:3478", {"urls": "turn:t.example.org"}],
            "host_addresses": ["127.0.0.1", "::1"],
            "max_message_size": 1024,
            "max_peers": 1,
            "connect_timeout": 0.5,
        },
    )


def test_ice_server_configuration():
    assert configuration(None).iceServers is None  # aiortc's default STUN server
    assert configuration([]).iceServers == []
    servers = configuration(
        [
            "stun:s.example.org:3478",
            {"urls": "turn:t.example.org", "username": "u", "credential": "p"},
        ]
    ).iceServers
    assert [server.urls for server in servers] == ["stun:s.example.org:3478", "turn:t.example.org"]
    assert servers[1].username == "u"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xff\xfe", "is not JSON"),
        ("{", "is not JSON"),
        ("3", "is a JSON int"),
        ('{"sdp": "v=0"}', "has type None"),
        ('{"type": "offer"}', "sdp None is not an SDP"),
        ('{"type": "offer", "sdp": "v=0\\r\\n"}', "no data channel section"),
    ],
)
def test_parse_offer_explains_what_is_wrong(raw, expected):
    with pytest.raises(OfferError, match=expected) as caught:
        parse_offer(raw)
    assert caught.value.status == 400


def test_parse_offer_takes_a_data_channel_offer():
    assert parse_offer(json.dumps({"type": "offer", "sdp": OFFER_SDP})) == (
        OFFER_SDP,
        "offer",
    )


def test_foreign_addresses_finds_every_address_but_loopback():
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nc=IN IP4 127.0.0.1\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
    )
    assert foreign_addresses(sdp) == []
    leaky = sdp + (
        "a=candidate:2 1 udp 2130706431 192.168.1.20 5001 typ host\r\n"
        "a=candidate:3 1 udp 2130706431 fe80::1 5002 typ host\r\n"
        "a=candidate:4 1 udp 1694498815 203.0.113.9 5003 typ srflx raddr 10.0.0.2 rport 5004\r\n"
        "a=candidate:5 1 udp 2130706431 1f2e3d4c.local 5005 typ host\r\n"
    )
    assert foreign_addresses(leaky) == [
        "10.0.0.2",
        "192.168.1.20",
        "1f2e3d4c.local",
        "203.0.113.9",
        "fe80::1",
    ]


async def test_gathering_is_limited_inside_the_block_only():
    with gathering_on(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
        with gathering_on(None):
            # None: aioice's own list, which never holds 127.0.0.1.
            assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)
    # Outside the block, aioice's own list again.
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)
    peer = loopback_peer()
    try:
        peer.createDataChannel("x")
        offer = await make_offer(peer)
        assert foreign_addresses(offer["sdp"]) == []
        assert " 127.0.0.1 " in offer["sdp"]
    finally:
        await peer.close()
