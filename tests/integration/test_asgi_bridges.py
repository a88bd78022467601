"""ASGI both ways, over real sockets: ``channels serve`` serving a hand-written ASGI 3
application for HTTP and WebSocket, and uvicorn serving the project's Channels consumers
through ChannelsApplication."""

from __future__ import annotations

import http.client
import signal
import sys
from pathlib import Path

import pytest

from channels_core.cli import build_parser
from channels_core.plugins import get_registry
from channels_core.testing.processes import free_port, start_process
from channels_ws.testing import ConnectionClosed, HandshakeRefused, WebSocketClient

SITE = Path(__file__).resolve().parent / "site_project"
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
TIMEOUT = 10

pytestmark = pytest.mark.slow


def get(port: int, path: str, body: bytes | None = None):
    """One request on a new connection: (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("POST" if body is not None else "GET", path, body=body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def served_app():
    """``channels serve site_project.asgi:application``."""
    with start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            "--pythonpath",
            SITE,
            "--settings",
            "site_project.settings",
            "serve",
            "site_project.asgi:application",
            "--endpoint",
            "tcp:0:interface=127.0.0.1",
        ]
    ) as process:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        yield process
    assert process.returncode is not None


def test_channels_serve_gives_http_to_the_asgi_app(served_app):
    assert get(served_app.port, "/hello/")[::2] == (200, b"plain /hello/")


def test_channels_serve_gives_websockets_to_the_asgi_app(served_app):
    with WebSocketClient.connect(served_app.port, "/ws/echo/", subprotocols=["chat"]) as client:
        assert client.headers["sec-websocket-protocol"] == "chat"
        client.send_text("hi")
        assert client.receive() == "app: hi /ws/echo/"
        client.send_bytes(b"abc")
        assert client.receive() == b"cba"
        client.send_text("bye")
        with pytest.raises(ConnectionClosed) as closed:
            client.receive()
        assert closed.value.code == 4001


def test_an_asgi_app_that_raises_closes_its_websocket_with_1011(served_app):
    with WebSocketClient.connect(served_app.port, "/ws/echo/") as client:
        client.send_text("raise")
        with pytest.raises(ConnectionClosed) as closed:
            client.receive()
        assert closed.value.code == 1011
    served_app.wait_for_line(r"The ASGI application raised on the WebSocket /ws/echo/")


def test_application_close_timeout_is_daphnes_name_for_the_drain_timeout():
    parser = build_parser(get_registry())
    assert parser.parse_args(["serve", "--application-close-timeout", "2.5"]).drain_timeout == 2.5
    assert parser.parse_args(["serve", "--drain-timeout", "4"]).drain_timeout == 4


def test_the_asgi_app_refusing_a_websocket_gives_403(served_app):
    with pytest.raises(HandshakeRefused) as refused:
        WebSocketClient.connect(served_app.port, "/refuse/")
    assert refused.value.status == 403


def test_the_client_closing_reaches_the_asgi_app(served_app):
    with WebSocketClient.connect(served_app.port, "/closing/") as client:
        assert client.close(1000) == 1000
    # The app got websocket.disconnect and returned; the server still serves.
    with WebSocketClient.connect(served_app.port, "/again/") as client:
        client.send_text("x")
        assert client.receive() == "app: x /again/"


@pytest.fixture(scope="module")
def uvicorn_server():
    """uvicorn serving ``site_project.asgi:channels_application`` (ChannelsApplication)."""
    port = free_port()
    with start_process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "site_project.asgi:channels_application",
            "--app-dir",
            SITE,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws",
            "wsproto",
            "--lifespan",
            "on",
        ],
        env={"DJANGO_SETTINGS_MODULE": "site_project.settings"},
    ) as process:
        process.wait_for_line(r"Uvicorn running on", timeout=30)
        process.port = port
        yield process
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.terminate() == -signal.SIGTERM
    assert "Application shutdown complete" in process.output


def test_uvicorn_serves_a_routed_http_consumer(uvicorn_server):
    status, headers, body = get(uvicorn_server.port, "/hello/?q=1", body=b"data")
    assert (status, body) == (200, b"hello q=1|data")
    assert headers["content-type"] == "text/plain"


def test_uvicorn_serves_django_views_and_500s_through_channels(uvicorn_server):
    assert get(uvicorn_server.port, "/page/")[::2] == (200, b"<h1>site page</h1>")
    assert get(uvicorn_server.port, "/nowhere/")[0] == 404
    assert get(uvicorn_server.port, "/crash/")[0] == 500


def test_uvicorn_serves_websocket_consumers(uvicorn_server):
    with WebSocketClient.connect(uvicorn_server.port, "/ws/echo/") as client:
        client.send_text("hello")
        assert client.receive() == "hello"
        client.send_bytes(b"\x01\x02")
        assert client.receive() == b"\x01\x02"
        client.send_text("close")
        with pytest.raises(ConnectionClosed) as closed:
            client.receive()
        assert closed.value.code == 4000


def test_uvicorn_websocket_groups_and_refusal(uvicorn_server):
    with pytest.raises(HandshakeRefused) as refused:
        WebSocketClient.connect(uvicorn_server.port, "/ws/room/private/")
    assert refused.value.status == 403
    with (
        WebSocketClient.connect(uvicorn_server.port, "/ws/room/lobby/") as ada,
        WebSocketClient.connect(uvicorn_server.port, "/ws/room/lobby/") as bob,
    ):
        ada.send_text("hi")
        assert bob.receive() == "lobby: hi"
        assert ada.receive() == "lobby: hi"
