"""A third-party protocol plugin, installed and served as a user would do it.

``channels-lineecho`` (examples/lineproto, the example of the plugin author's guide) is a
real distribution with an entry point in the group ``channels``. It is pip-installed into a
throwaway virtualenv; that venv's ``channels`` script lists it, then serves it on 127.0.0.1 to
real TCP clients.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from channels_core.testing.processes import build_venv, run, start_process

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lineproto"
PROJECT = EXAMPLE / "lineecho_project"
LISTENING = r"lineecho listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
TIMEOUT = 10


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv that sees the development install, plus channels-lineecho installed from source."""
    return build_venv(
        tmp_path_factory.mktemp("lineecho") / "venv",
        install=[EXAMPLE],
        scripts={"channels": "channels_core.cli:main"},
    )


def channels(venv, *args):
    """The venv's ``channels`` with the lineecho project's settings."""
    return [
        venv.script("channels"),
        "--pythonpath",
        PROJECT,
        "--settings",
        "lineecho_project.settings",
        *args,
    ]


def serve(venv, *args):
    """Start ``channels serve`` on a free port; the caller waits for the listening line."""
    return start_process(
        channels(venv, "serve", "--lineecho-endpoint", "tcp:0:interface=127.0.0.1", *args)
    )


async def converse(port: int, lines: list[str]) -> list[str]:
    """Send each line and read its reply before the next; return the replies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = []
    try:
        for line in lines:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            replies.append((await asyncio.wait_for(reader.readline(), TIMEOUT)).decode())
    finally:
        writer.close()
        await writer.wait_closed()
    return replies


def test_plugins_lists_the_installed_distribution(venv):
    result = run([venv.script("channels"), "plugins", "--json"])
    assert result.returncode == 0, result.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)["plugins"]}
    lineecho = plugins["lineecho"]
    assert lineecho["distribution"] == "channels-lineecho"
    assert lineecho["version"] == "1.2.3"
    assert lineecho["module"] == "channels_lineecho.plugin"
    assert lineecho["hooks"] == [
        "channels_add_commands",
        "channels_register_channels",
        "channels_register_protocols",
    ]
    assert lineecho["registered"] == {
        "protocols": ["lineecho"],
        "channels": ["lineecho.receive", "lineecho.send!"],
    }


def test_plugin_options_become_serve_flags(venv):
    result = run(channels(venv, "serve", "--help"))
    assert result.returncode == 0, result.stderr
    assert "--lineecho-endpoint ENDPOINT" in result.stdout
    assert "CHANNELS['OPTIONS']['lineecho']['max_line_length']" in result.stdout


async def test_serves_lines_to_several_clients_at_once(venv):
    with serve(venv) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        conversations = [
            [f"client {number} line {index}" for index in range(5)] for number in range(8)
        ]
        replies = await asyncio.gather(*(converse(port, lines) for lines in conversations))
        assert replies == [[line.upper() + "\n" for line in lines] for lines in conversations]
        assert server.terminate() == 0


async def test_group_sends_reach_connections_through_the_layer(venv):
    with serve(venv) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"join lobby\n")
        assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"JOINED lobby\n"
        # Another connection joins and says something; the group send goes through the layer
        # to the server's reply receiver, which hands it to both connections.
        assert await converse(port, ["join lobby", "say lobby hello"]) == [
            "JOINED lobby\n",
            "lobby: hello\n",
        ]
        assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"lobby: hello\n"
        writer.close()
        await writer.wait_closed()
        assert server.terminate() == 0


async def test_oversized_line_gets_an_error_and_is_closed(venv):
    with serve(venv) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # The settings allow 64 bytes; the line is refused before its newline arrives.
        writer.write(b"x" * 65)
        reply = await asyncio.wait_for(reader.read(), TIMEOUT)
        assert reply == b"ERROR line too long: more than 64 bytes without a newline\n"
        writer.close()
        await writer.wait_closed()
        # The server still serves other connections.
        assert await converse(port, ["still here"]) == ["STILL HERE\n"]
        assert server.terminate() == 0


async def test_consumer_can_close_the_connection(venv):
    with serve(venv) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"bye\n")
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b"BYE\n"
        writer.close()
        await writer.wait_closed()
        assert server.terminate() == 0


def test_plugin_command_and_sigterm_drain(venv):
    with serve(venv) as server:
        port = server.wait_for_line(LISTENING).group("port")
        result = run([venv.script("channels"), "lineecho-send", port, "one", "two"])
        assert result.returncode == 0, result.stderr
        assert result.stdout == "ONE\nTWO\n"
        assert server.terminate(signal.SIGTERM) == 0
    assert "Draining" in server.output
    assert "Channels server stopped." in server.output


async def test_serve_a_layer_named_the_original_way_with_generic_options(venv):
    # channels serve my_project.asgi:channel_layer, as Channels 1's daphne took it; the
    # project's CHANNELS["MODE"] keeps it in process (a layer alone would mean worker mode).
    with serve(
        venv, "lineecho_project.asgi:channel_layer", "--option", "lineecho.max_line_length=8"
    ) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        assert await converse(port, ["short"]) == ["SHORT\n"]
        assert await converse(port, ["too long!"]) == [
            "ERROR line too long: more than 8 bytes without a newline\n"
        ]
        assert server.terminate() == 0
    assert "Serving in inprocess mode: CHANNELS['MODE'] is 'inprocess'." in server.output
