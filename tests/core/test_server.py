"""The protocol-server runtime: listeners, reply channels, lifecycle hooks, draining.

The reactor can be installed once per process, so every server runs in a subprocess: a probe
script serves a small ``probe`` protocol (UDP datagrams through the routed consumers, an
optional stream endpoint, a service on the loop) with :func:`run_server`.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import pytest

from channels_core.exceptions import ImproperlyConfigured
from channels_core.protocols import Option, ProtocolSpec
from channels_core.server import resolve_options
from channels_core.settings import parse_settings
from channels_core.testing.processes import free_port, start_process, wait_for_port, write_settings

TIMEOUT = 10

PROBE = '''
import logging
import sys

import channels_memory.plugin
import django
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol

from channels_core import builtin, hookimpl
from channels_core.exceptions import ImproperlyConfigured
from channels_core.listeners import DatagramListener, ServiceListener, StreamListener
from channels_core.plugins import Registry
from channels_core.protocols import Option, ProtocolSpec
from channels_core.server import run_server

log = logging.getLogger("probe")


class Datagrams(DatagramProtocol):
    """Each datagram is a probe.receive event; the reply goes back to its sender."""

    def __init__(self, server):
        self.server = server

    def datagramReceived(self, data, address):
        def reply(content):
            self.server.close_reply(reply_channel)
            self.transport.write(content["data"], address)

        reply_channel = self.server.open_reply("probe.send", reply)
        self.server.emit_nowait("probe.receive", {"reply_channel": reply_channel, "data": data})


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


def listeners(server):
    async def start(server):
        log.info("service started on %s", type(server.loop).__name__)

    async def stop(server):
        log.info("service stopped")

    found = [
        DatagramListener("127.0.0.1", 0, Datagrams(server)),
        ServiceListener(start, stop, "probe service"),
    ]
    endpoint = server.option("probe", "endpoint")
    if endpoint:
        found.append(StreamListener(endpoint, Factory.forProtocol(Echo)))
    return found


class Probe:
    @hookimpl
    def channels_register_protocols(self, register):
        register(ProtocolSpec("probe", listeners, options=(Option("endpoint", "stream"),)))

    @hookimpl
    def channels_startup(self, server):
        log.info("startup kind=%s layer=%s", server.kind, server.alias)
        log.info("addresses %s", [listener.address for listener in server.listeners])

    @hookimpl
    def channels_shutdown(self, server):
        log.info("shutdown")


logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
django.setup()
registry = Registry.from_plugins(
    {"core": builtin, "memory": channels_memory.plugin, "probe": Probe()}
)
options = {"probe": {"endpoint": sys.argv[1]}} if len(sys.argv) > 1 else None
try:
    sys.exit(run_server(options=options, registry=registry))
except ImproperlyConfigured as error:
    print(error, file=sys.stderr)
    sys.exit(1)
'''

ROUTING = """
from channels_core import route


async def upper(message):
    await message.reply_channel.send({"data": message["data"].upper()})


routes = [route("probe.receive", upper)]
"""

UDP_LISTENING = r"probe listening on udp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"


@pytest.fixture
def probe(tmp_path):
    """Start the probe server with optional arguments (a stream endpoint)."""
    (tmp_path / "probe_server.py").write_text(PROBE)
    (tmp_path / "probe_routing.py").write_text(ROUTING)
    write_settings(
        tmp_path,
        "probe_settings",
        CHANNEL_LAYERS={"default": {"BACKEND": "memory", "ROUTING": "probe_routing.routes"}},
        CHANNELS={"PROTOCOLS": ["probe"]},
    )
    started = []

    def start(*args):
        process = start_process(
            [sys.executable, tmp_path / "probe_server.py", *args],
            env={"DJANGO_SETTINGS_MODULE": "probe_settings", "PYTHONPATH": str(tmp_path)},
            cwd=tmp_path,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.__exit__(None, None, None)


class UDPClient(asyncio.DatagramProtocol):
    """Collects the datagrams it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.put_nowait(data)


async def test_datagrams_service_and_lifecycle_hooks(probe):
    server = probe()
    port = int(server.wait_for_line(UDP_LISTENING).group("port"))
    server.wait_for_line("probe listening on probe service")
    # uvloop is installed here, so the reactor runs on uvloop's loop.
    server.wait_for_line("service started on Loop")
    server.wait_for_line("startup kind=server layer=default")
    transport, client = await asyncio.get_running_loop().create_datagram_endpoint(
        UDPClient, remote_addr=("127.0.0.1", port)
    )
    try:
        for word in (b"hello", b"datagram"):
            transport.sendto(word)
            assert await asyncio.wait_for(client.received.get(), TIMEOUT) == word.upper()
    finally:
        transport.close()
    assert server.terminate(signal.SIGTERM) == 0
    lines = server.output.splitlines()
    order = [
        next(index for index, line in enumerate(lines) if text in line)
        for text in ("Draining", "service stopped", "shutdown", "Channels server stopped.")
    ]
    assert order == sorted(order)


def test_listeners_report_what_they_really_bound(probe, tmp_path):
    path = tmp_path / "probe.sock"
    server = probe(f"unix:{path}")
    port = int(server.wait_for_line(UDP_LISTENING).group("port"))
    assert port != 0
    line = server.wait_for_line(r"addresses (\[.*\])").group(1)
    # The datagram listener asked for port 0: its address has the port it got.
    assert line == f"[('127.0.0.1', {port}), None, '{path}']"
    assert server.terminate() == 0


def test_sigint_drains_too(probe):
    server = probe()
    server.wait_for_line("Channels server ready")
    assert server.terminate(signal.SIGINT) == 0
    assert "shutdown" in server.output


def test_stream_listener_on_a_unix_socket(probe, tmp_path):
    path = tmp_path / "probe.sock"
    server = probe(f"unix:{path}")
    server.wait_for_line(f"probe listening on unix:{path} → {path}")
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(TIMEOUT)
        client.connect(str(path))
        client.sendall(b"ping")
        assert client.recv(4) == b"ping"
    assert server.terminate() == 0


def test_stream_listener_on_a_chosen_tcp_port(probe):
    port = free_port()
    server = probe(f"tcp:{port}:interface=127.0.0.1")
    wait_for_port(port)
    server.wait_for_line(f"→ 127.0.0.1:{port}")
    assert server.terminate() == 0


def test_a_port_in_use_is_a_clear_error(probe):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = probe(f"tcp:{port}:interface=127.0.0.1")
        assert server.wait() == 1
    assert f"Cannot listen on 'tcp:{port}:interface=127.0.0.1'" in server.output
    assert "Pick another port or address" in server.output
    # The listeners already started were closed again, and nothing was left half-started.
    assert "service stopped" in server.output
    assert "Traceback" not in server.output


def test_a_bad_endpoint_string_is_a_clear_error(probe):
    server = probe("carrier-pigeon:42")
    assert server.wait() == 1
    assert "The endpoint 'carrier-pigeon:42' is not a valid Twisted endpoint string" in (
        server.output
    )


def no_listeners(server):
    return []


SPEC = ProtocolSpec(
    "probe",
    no_listeners,
    options=(Option("port", "The port.", default=7000, type=int), Option("host", "Host.")),
)


def test_options_merge_defaults_settings_and_command_line():
    settings = parse_settings(channels={"OPTIONS": {"probe": {"port": 7100, "host": "a"}}})
    assert resolve_options([SPEC], settings, {"probe": {"host": "b"}}) == {
        "probe": {"port": 7100, "host": "b"}
    }
    assert resolve_options([SPEC], parse_settings()) == {"probe": {"port": 7000, "host": None}}


def test_an_unknown_option_in_settings_is_a_clear_error():
    settings = parse_settings(channels={"OPTIONS": {"probe": {"prot": 1}}})
    with pytest.raises(ImproperlyConfigured) as error:
        resolve_options([SPEC], settings)
    assert str(error.value) == (
        "CHANNELS['OPTIONS']['probe'] has the unknown option 'prot'; the protocol 'probe' "
        "takes ['host', 'port']."
    )


def test_options_for_a_protocol_that_is_not_enabled_are_a_clear_error():
    with pytest.raises(ImproperlyConfigured) as error:
        resolve_options([SPEC], parse_settings(), {"udp": {"port": 1}})
    assert str(error.value) == (
        "Options were given for the protocol 'udp', which is not enabled (enabled: "
        "['probe']); enable it with --protocol udp or CHANNELS['PROTOCOLS']."
    )
