"""The registry: what registration hooks provide, checked in one place."""

from __future__ import annotations

import pluggy
import pytest

from channels_core import hookimpl
from channels_core.exceptions import PluginError
from channels_core.layers import BaseChannelLayer
from channels_core.plugins import Registry
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec, is_positive_number
from channels_core.settings import parse_settings


class NullLayer(BaseChannelLayer):
    """A layer class for registration tests; never sent to."""

    async def send(self, channel, message):
        raise NotImplementedError

    async def receive(self, channel):
        raise NotImplementedError

    async def receive_prefix(self, prefix):
        raise NotImplementedError

    async def group_add(self, group, channel):
        raise NotImplementedError

    async def group_discard(self, group, channel):
        raise NotImplementedError

    async def group_send(self, group, message):
        raise NotImplementedError

    async def flush(self):
        raise NotImplementedError

    async def close(self):
        raise NotImplementedError

    async def stats(self, channel=None):
        raise NotImplementedError


def no_listeners(server):
    return []


class PingPlugin:
    """A protocol plugin implementing every registration hook."""

    configured = None

    @hookimpl
    def channels_register_layers(self, register):
        register("null", NullLayer)

    @hookimpl
    def channels_register_protocols(self, register):
        register(
            ProtocolSpec(
                name="ping",
                listeners=no_listeners,
                emits=("ping.receive",),
                consumes=("ping.send!",),
                options=(Option("endpoint", "where to listen", default="tcp:0"),),
            )
        )
        register(ProtocolSpec(name="pingws", listeners=no_listeners, requires=("ping",)))

    @hookimpl
    def channels_register_consumers(self, register):
        register("PingConsumer", PingPlugin)

    @hookimpl
    def channels_register_channels(self, register):
        register(ChannelSpec("ping.receive", "protocol", keys=("reply_channel", "data")))

    @hookimpl
    def channels_configure(self, settings):
        PingPlugin.configured = settings


class DuplicateLayerPlugin:
    @hookimpl
    def channels_register_layers(self, register):
        register("null", NullLayer)


def test_each_registration_is_attributed_to_its_plugin():
    registry = Registry.from_plugins({"ping": PingPlugin()})
    assert registry.layers["null"].obj is NullLayer
    assert registry.layers["null"].plugin == "ping"
    assert registry.protocols["ping"].obj.option_defaults() == {"endpoint": "tcp:0"}
    assert registry.consumers["PingConsumer"].plugin == "ping"
    assert registry.channels["ping.receive"].obj.keys == ("reply_channel", "data")
    info = registry.plugins["ping"]
    assert info.registered == {
        "layers": ["null"],
        "protocols": ["ping", "pingws"],
        "consumers": ["PingConsumer"],
        "channels": ["ping.receive"],
    }
    assert "channels_register_protocols" in info.hooks
    assert registry.hooks_table()["channels_register_layers"] == ["ping"]


def test_configure_hook_receives_the_settings():
    registry = Registry.from_plugins({"ping": PingPlugin()})
    settings = parse_settings()
    registry.hook.channels_configure(settings=settings)
    assert PingPlugin.configured is settings


def test_a_name_registered_twice_names_both_plugins():
    with pytest.raises(PluginError, match="layer 'null' is registered twice: by plugin 'ping'"):
        Registry.from_plugins({"ping": PingPlugin(), "dup": DuplicateLayerPlugin()})


def test_a_misspelt_hook_implementation_fails_loudly():
    class Misspelt:
        @hookimpl
        def channels_register_layer(self, register):
            register("x", NullLayer)

    with pytest.raises(pluggy.PluginValidationError, match="channels_register_layer"):
        Registry.from_plugins({"misspelt": Misspelt()})


@pytest.mark.parametrize(
    ("registration", "fragment"),
    [
        (lambda register: register("bad", object), "is not a BaseChannelLayer subclass"),
        (lambda register: register("bad", 42), "is not a BaseChannelLayer subclass"),
    ],
)
def test_a_layer_that_is_not_a_layer_class_is_rejected(registration, fragment):
    class Bad:
        @hookimpl
        def channels_register_layers(self, register):
            registration(register)

    with pytest.raises(PluginError, match=fragment):
        Registry.from_plugins({"bad": Bad()})


def test_protocol_and_channel_specs_are_checked():
    with pytest.raises(PluginError, match="is not a plain identifier"):
        ProtocolSpec(name="bad name", listeners=no_listeners)
    with pytest.raises(PluginError, match="is not callable"):
        ProtocolSpec(name="p", listeners="nope")
    with pytest.raises(PluginError, match="sent_by='server'"):
        ChannelSpec("p.receive", "server")

    class RegistersAString:
        @hookimpl
        def channels_register_protocols(self, register):
            register("udp")

    with pytest.raises(PluginError, match=r"is not a channels_core\.protocols\.ProtocolSpec"):
        Registry.from_plugins({"str": RegistersAString()})


class WebPlugin:
    """http and websocket (enabled by default) and udp (enabled by name)."""

    def __init__(self, *names):
        self.names = names

    @hookimpl
    def channels_register_protocols(self, register):
        requires = {"websocket": ("http",)}
        for name in self.names:
            register(
                ProtocolSpec(name=name, listeners=no_listeners, requires=requires.get(name, ()))
            )


def test_without_settings_only_http_and_websocket_are_enabled():
    registry = Registry.from_plugins({"web": WebPlugin("http", "udp", "websocket")})
    assert registry.default_protocols() == ["http", "websocket"]
    assert [spec.name for spec in registry.enabled_protocols()] == ["http", "websocket"]
    assert [spec.name for spec in registry.enabled_protocols(["udp"])] == ["udp"]
    # websocket rides on http: without http installed, the default serves neither.
    assert Registry.from_plugins({"web": WebPlugin("websocket", "udp")}).enabled_protocols() == []


def test_enabled_protocols_are_named_and_check_requirements():
    registry = Registry.from_plugins({"ping": PingPlugin()})
    assert registry.enabled_protocols() == []
    assert [spec.name for spec in registry.enabled_protocols(["ping"])] == ["ping"]
    with pytest.raises(PluginError, match="'pingws' requires 'ping', which is not enabled"):
        registry.enabled_protocols(["pingws"])
    with pytest.raises(PluginError, match="'udp', which is not installed: pip install channels-ud"):
        registry.enabled_protocols(["udp"])


def test_an_upgrade_token_needs_its_handler():
    with pytest.raises(PluginError, match="sets only one of upgrade='websocket'"):
        ProtocolSpec(name="ws", listeners=no_listeners, upgrade="websocket")

    def take_over(server, request, transport):
        return None

    spec = ProtocolSpec(
        name="ws", listeners=no_listeners, upgrade="websocket", accept_upgrade=take_over
    )
    assert spec.accept_upgrade is take_over


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        (1, {}, True),
        (0.5, {}, True),
        (0, {}, False),
        (0, {"zero": True}, True),
        (-1, {"zero": True}, False),
        (True, {}, False),
        (False, {"zero": True}, False),
        ("5", {}, False),
        (None, {}, False),
        (float("nan"), {"zero": True}, False),
        (3, {"integer": True}, True),
        (3.0, {"integer": True}, False),
        (0, {"integer": True}, False),
    ],
)
def test_is_positive_number_takes_ints_and_floats_never_bools(value, options, expected):
    assert is_positive_number(value, **options) is expected
