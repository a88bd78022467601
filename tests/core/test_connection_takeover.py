"""Protocols that take whole connections from another's stream listener: ``ProtocolSpec``'s
``alpn``, ``preface`` and ``accept_connection``, and the server's ``alpn_protocols``,
``connection_handler`` and ``preface_pending`` (HTTP/2 on HTTP/1.1's listener is the real
user: ``tests/http2``)."""

from __future__ import annotations

import pytest

from channels_core.exceptions import PluginError
from channels_core.plugins import Registry
from channels_core.protocols import ProtocolSpec
from channels_core.server import ProtocolServer
from channels_core.settings import parse_settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def take(server, transport):
    return "taken"


def other(server, transport):
    return "other"


def spec(name: str, **fields) -> ProtocolSpec:
    return ProtocolSpec(name=name, listeners=lambda server: [], **fields)


async def build_server(*protocols: ProtocolSpec) -> ProtocolServer:
    settings = parse_settings({"default": {"BACKEND": "memory"}}, {"MODE": "worker"})
    return ProtocolServer(settings, Registry.from_plugins({}), list(protocols))


async def test_alpn_ids_of_taking_protocols_come_first():
    server = await build_server(
        spec("plain"), spec("h2ish", alpn="h2", preface=PREFACE, accept_connection=take)
    )
    assert server.alpn_protocols("http/1.1") == ["h2", "http/1.1"]
    assert server.alpn_protocols("h2", "http/1.1") == ["h2", "http/1.1"]
    assert (await build_server(spec("plain"))).alpn_protocols("http/1.1") == ["http/1.1"]


async def test_the_handler_is_chosen_by_alpn_or_by_the_preface():
    server = await build_server(
        spec("h2ish", alpn="h2", preface=PREFACE, accept_connection=take),
        spec("magic", preface=b"MAGIC", accept_connection=other),
    )
    assert server.connection_handler("h2") is take
    assert server.connection_handler(b"h2") is take
    assert server.connection_handler("http/1.1", b"GET / HTTP/1.1\r\n") is None
    assert server.connection_handler(None, PREFACE + b"frames") is take
    assert server.connection_handler(None, b"MAGIC!") is other
    assert server.connection_handler(None, b"GET / HTTP/1.1\r\n") is None
    # The first bytes of a preface: wait for more before deciding; anything else: decide now.
    assert server.preface_pending(b"PRI * HT")
    assert server.preface_pending(b"MAG")
    assert not server.preface_pending(b"GET ")
    assert not server.preface_pending(PREFACE)
    assert not server.preface_pending(b"PRX")


@pytest.mark.parametrize(
    "fields",
    [
        {"alpn": "h2"},
        {"preface": PREFACE},
        {"accept_connection": take},
        {"preface": "text", "accept_connection": take},
        {"preface": b"", "accept_connection": take},
    ],
)
def test_inconsistent_fields_are_one_sentence(fields):
    with pytest.raises(PluginError, match="Protocol 'broken'"):
        spec("broken", **fields)
