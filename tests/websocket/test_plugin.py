"""The plugin as the kernel sees it: registration, options, their checks, the serve flags."""

from __future__ import annotations

import sys

import pytest

from channels_core.exceptions import ImproperlyConfigured
from channels_core.plugins import Registry
from channels_core.server import ProtocolServer
from channels_core.settings import parse_settings
from channels_core.testing.processes import run
from channels_ws import plugin
from channels_ws.hub import DEBUG_HOSTS, hub_for


def registry() -> Registry:
    return Registry.from_plugins({"websocket": plugin})


def test_registers_the_protocol_its_channels_and_consumers():
    found = registry()
    spec = found.protocols["websocket"].obj
    assert spec.upgrade == "websocket"
    assert spec.requires == ("http",)
    assert list(spec.listeners(None)) == []
    assert set(spec.emits) == {"websocket.connect", "websocket.receive", "websocket.disconnect"}
    assert spec.consumes == ("websocket.send!",)
    assert {"WebsocketConsumer", "WebsocketDemultiplexer", "channel_session_user"} <= set(
        found.consumers
    )
    assert "websocket.send!" in found.channels


async def build_server(**options) -> ProtocolServer:
    """A real server object (no reactor, no listeners started) with websocket options."""
    found = registry()
    settings = parse_settings({"default": {"BACKEND": "memory"}}, {"MODE": "worker"})
    return ProtocolServer(
        settings, found, [found.protocols["websocket"].obj], {"websocket": options}
    )


async def test_defaults_and_allowed_hosts():
    hub = hub_for(await build_server())
    assert hub.max_message_size == 1 << 20
    assert hub.connect_timeout == 5.0
    assert hub.compression is True
    # The tests' Django settings have DEBUG off and no ALLOWED_HOSTS: no origin is allowed.
    assert hub.allowed_hosts == ()
    hub = hub_for(await build_server(allowed_origins=["chat.example"]))
    assert hub.allowed_hosts == ("chat.example",)
    assert ".localhost" in DEBUG_HOSTS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ping_interval": 0}, "['ping_interval'] is 0; it must be a number more than zero"),
        ({"timeout": -1}, "['timeout'] is -1; it must be a number zero or more"),
        ({"max_message_size": "big"}, "['max_message_size'] is 'big'"),
        ({"connect_timeout": True}, "['connect_timeout'] is True"),
        ({"allowed_origins": "example.com"}, "make it a list of host names"),
    ],
)
async def test_bad_options_are_clear_errors_at_startup(options, message):
    with pytest.raises(ImproperlyConfigured, match=message.replace("[", r"\[").replace("]", r"\]")):
        await build_server(**options)


def test_options_are_serve_flags():
    result = run(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            "serve",
            "--help",
        ]
    )
    assert result.returncode == 0, result.stderr
    for flag in (
        "--websocket-timeout",
        "--websocket-connect-timeout",
        "--ping-interval",
        "--ping-timeout",
        "--websocket-max-message-size",
        "--websocket-max-frame-size",
        "--websocket-compression",
        "--websocket-allowed-origin",
    ):
        assert flag in result.stdout
