"""channels-http served by a real ``channels serve`` process, talked to over real sockets."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from channels_core.testing.processes import start_process

PROJECT = Path(__file__).resolve().parent / "http_project"
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
TIMEOUT = 10


def serve(*args: str, settings: str = "http_project.settings"):
    """Start ``channels serve`` for the test project on a free port."""
    return start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            "--pythonpath",
            PROJECT,
            "--settings",
            settings,
            "serve",
            *args,
            "--endpoint",
            "tcp:0:interface=127.0.0.1",
        ]
    )


@pytest.fixture(scope="module")
def server():
    """One server for the module."""
    with serve() as process:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        yield process


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    """One request on a new connection; returns (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_a_routed_consumer_answers(server):
    assert request(server.port, "GET", "/hello/")[::2] == (200, b"hello")
    status, _, body = request(server.port, "POST", "/echo/?a=%20b", body=b"payload")
    assert (status, body) == (201, b"a=%20b|payload")


def test_an_unrouted_url_is_served_by_a_django_view(server):
    status, headers, body = request(server.port, "GET", "/django/")
    assert (status, body) == (200, b"django says hi to /django/")
    assert headers["Content-Type"] == "text/plain"
    assert request(server.port, "GET", "/nowhere/")[0] == 404


def test_streaming_response_is_chunked(server):
    status, headers, body = request(server.port, "GET", "/stream/")
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"part 0\npart 1\npart 2\npart 3\npart 4\nend\n"


def test_keep_alive_and_pipelining_on_one_connection(server):
    replies = exchange(
        server.port,
        b"GET /hello/ HTTP/1.1\r\n\r\nGET /django/ HTTP/1.1\r\n\r\n"
        b"GET /hello/ HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    assert replies.count(b"HTTP/1.1 200 OK") == 3
    assert replies.index(b"hello") < replies.index(b"django says hi") < replies.rindex(b"hello")
    assert replies.endswith(b"connection: close\r\n\r\nhello")


def test_a_consumer_that_raises_gets_500_and_the_server_keeps_serving(server):
    assert request(server.port, "GET", "/crash/")[0] == 500
    server.wait_for_line(r"Serving GET /crash/ raised; answering 500")
    assert request(server.port, "GET", "/hello/")[::2] == (200, b"hello")


def test_slowloris_gets_408_and_is_closed(server):
    # The project sets request_timeout to 1 s; the head never completes.
    reply = exchange(server.port, b"GET /hello/ HTTP/1.1\r\nX-Slow: ")
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"POST /echo/ HTTP/1.1\r\nContent-Length: 2048\r\n\r\n", 413),
        (b"GET /hello/ HTTP/1.1\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431),
        (b"POST /echo/ HTTP/1.1\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n", 413),
    ],
)
def test_bad_requests_are_refused_and_closed(server, data, status):
    assert exchange(server.port, data).startswith(b"HTTP/1.1 %d " % status)


def test_expect_100_continue(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /echo/ HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"abc")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 201 Created\r\n")
    assert reply.endswith(b"|abc")


def test_a_client_vanishing_mid_response_is_quiet(server):
    before = len(server.lines)
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /endless/ HTTP/1.1\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")
    assert request(server.port, "GET", "/hello/")[::2] == (200, b"hello")
    server.wait_for_line(r'"GET /hello/ HTTP/1.1" 200')
    assert not [line for line in server.lines[before:] if "Traceback" in line or "ERROR" in line]


def test_long_poll_releases_many_waiting_clients(server):
    clients = 200
    sockets = []
    try:
        for _ in range(clients):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
            sock.sendall(b"GET /wait/ HTTP/1.1\r\nConnection: close\r\n\r\n")
            sockets.append(sock)
        # Every waiter must have joined the group before the release.
        deadline = time.monotonic() + TIMEOUT
        while request(server.port, "GET", "/waiting/")[2] != b"%d" % clients:
            assert time.monotonic() < deadline, "the waiters did not all join in time"
            time.sleep(0.05)
        assert request(server.port, "GET", "/release/")[::2] == (200, b"done")
        replies = []
        for sock in sockets:
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            replies.append(reply)
    finally:
        for sock in sockets:
            sock.close()
    assert all(reply.endswith(b"released") for reply in replies), replies[:3]


def test_options_proxy_headers_root_path_timeout_and_sigterm_drain():
    with serve("--proxy-headers", "true", "--root-path", "/app", "--http-timeout", "1") as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        status, _, body = request(
            port,
            "GET",
            "/meta/%C3%A9t%C3%A9",
            headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1", "X-Forwarded-Proto": "https"},
        )
        assert (status, json.loads(body)) == (
            200,
            {"client": ["203.0.113.9", 0], "scheme": "https", "root_path": "/app",
             "path": "/meta/été"},
        )  # fmt: skip
        # A request nobody answers gets 504 once --http-timeout passes.
        assert request(port, "GET", "/wait/")[0] == 504
        assert process.terminate(signal.SIGTERM) == 0
    assert "Channels server stopped." in process.output


CLIENT_APP = "http_project.asgi:client_application"


@pytest.mark.parametrize(
    ("flags", "on"),
    [
        # Daphne's form: the flags alone, the application right after them.
        (("--proxy-headers", "--access-log", CLIENT_APP), True),
        ((CLIENT_APP, "--proxy-headers", "--access-log"), True),
        # A value still may follow the flag, or be joined to it.
        (("--proxy-headers", "yes", "--access-log=on", CLIENT_APP), True),
        (("--proxy-headers", "false", "--access-log=off", CLIENT_APP), False),
    ],
)
def test_boolean_flags_alone_mean_true_as_in_daphne(flags, on):
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with serve(*flags) as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        status, _, body = request(port, "GET", "/who", headers=forwarded)
        assert status == 200
        client, scheme = ("203.0.113.9", "https") if on else ("127.0.0.1", "http")
        assert json.loads(body)["client"][0] == client
        assert json.loads(body)["scheme"] == scheme
        assert process.terminate(signal.SIGTERM) == 0
    assert ("channels_http.access" in process.output) is on, process.output
    if on:
        assert 'channels_http.access: 203.0.113.9:0 "GET /who HTTP/1.1" 200' in process.output


def test_serves_an_asgi_application():
    # A plain Django project: no CHANNEL_LAYERS, no routing.
    with serve("http_project.asgi:application", settings="http_project.plain_settings") as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        status, headers, body = request(port, "POST", "/any/path", body=b"data")
        assert (status, headers["x-app"], body) == (200, "asgi", b"asgi POST /any/path data")
        assert process.terminate() == 0


def test_an_upgrade_without_a_handler_is_a_normal_request_then_closed(server):
    reply = exchange(
        server.port, b"GET /hello/ HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"connection: close\r\n\r\nhello")


def test_an_upgrade_is_handed_to_the_websocket_protocol():
    # channels-ws takes Upgrade: websocket through channels_http.upgrade.hand_over.
    with serve("--protocol", "http", "--protocol", "websocket") as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(
                b"GET /chat/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            reply = b""
            while b"\r\n\r\n" not in reply and (chunk := sock.recv(4096)):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in reply
        assert process.terminate() == 0
