"""A response the application gets wrong never reaches the wire as given: header injection
(CR, LF or NUL in a value, a name that is not a token) from a Channels consumer, a Django view,
an ASGI application and a WebSocket handshake, and bodies that disagree with their
Content-Length. Real ``channels serve`` processes, raw sockets on 127.0.0.1."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import urlencode

import pytest
from channels_http2.testing import H2Client
from h2.events import DataReceived

from channels_core.testing.processes import channels_command, start_process
from channels_ws.testing import HandshakeRefused, WebSocketClient

PROJECT = Path(__file__).resolve().parent / "headers_project"
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
TIMEOUT = 10

BAD_HEADERS = [
    pytest.param(b"X-Test", b"a\r\nX-Injected: 1", id="crlf-in-value"),
    pytest.param(b"X-Test", b"a\nX-Injected: 1", id="lf-in-value"),
    pytest.param(b"X-Test", b"a\rX-Injected: 1", id="cr-in-value"),
    pytest.param(b"X-Test", b"a\x00X-Injected: 1", id="nul-in-value"),
    pytest.param(b"X-Injected y", b"1", id="space-in-name"),
    pytest.param(b"X-Injected:", b"1", id="colon-in-name"),
    pytest.param(b"X-Injected: 1\r\nX-Test", b"1", id="crlf-in-name"),
    pytest.param(b"", b"X-Injected", id="empty-name"),
]


def serve(*args: str):
    """``channels serve`` for the hostile project on a free port."""
    return start_process(
        channels_command(
            *("--pythonpath", PROJECT, "--settings", "headers_project.settings", "serve"),
            *args,
            *("--endpoint", "tcp:0:interface=127.0.0.1"),
        )
    )


@pytest.fixture(scope="module")
def server():
    """The project's consumers (and, for what they do not route, its Django view)."""
    with serve() as process:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        yield process


@pytest.fixture(scope="module")
def asgi_server():
    """``channels serve headers_project.hostile:application``."""
    with serve("headers_project.hostile:application") as process:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        yield process


def query(name: bytes, value: bytes) -> str:
    """The query string that has the project answer with header *name*: *value*."""
    return urlencode({"n": name, "v": value})


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def get(path: str, close: bool = False) -> bytes:
    """The bytes of a GET request for *path*."""
    return b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
        path.encode(),
        b"Connection: close\r\n" if close else b"",
    )


def new_lines(process, start: int, pattern: str) -> list[str]:
    """The lines *process* printed since line *start* that match *pattern*, once a request on
    another connection has been served and logged (so every earlier line is in). Both
    servers answer ``/header/``: the project's consumer, or the ASGI application."""
    marker = f"/header/?n=X-Fine&v={start}"
    reply = exchange(process.port, get(marker, close=True))
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nX-Fine: %d\r\n" % start in reply
    process.wait_for_line(re.escape(f'"GET {marker} HTTP/1.1" 200'))
    return [line for line in process.lines[start:] if re.search(pattern, line)]


def refused(process, start: int, name: bytes) -> None:
    """Exactly one line since *start* says a response header *name* could not be written."""
    shown = re.escape(repr(name.decode("latin-1")))
    lines = new_lines(process, start, f"the response header {shown} has")
    assert len(lines) == 1, process.output


def length_error(process, start: int) -> str:
    """The one line since *start* that says a body disagreed with its Content-Length."""
    lines = new_lines(process, start, r"cannot be written: the response set Content-Length")
    assert len(lines) == 1, process.output
    return lines[0]


def assert_one_500_and_closed(reply: bytes) -> None:
    """*reply* is one 500 response and nothing after it: the connection was closed before
    the request pipelined behind it was answered."""
    assert reply.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), reply
    assert reply.count(b"HTTP/1.1 ") == 1, reply
    assert b"\r\nconnection: close\r\n" in reply
    assert b"x-injected" not in reply.lower()


@pytest.mark.parametrize(("name", "value"), BAD_HEADERS)
@pytest.mark.parametrize("source", ["/header/", "/django/header/"])
def test_a_bad_header_from_a_consumer_or_view_is_a_500_and_one_log_line(
    server, source, name, value
):
    start = len(server.lines)
    # A second request follows on the same connection: it must not be answered.
    reply = exchange(server.port, get(f"{source}?{query(name, value)}") + get("/header/"))
    assert_one_500_and_closed(reply)
    refused(server, start, name)


@pytest.mark.parametrize(("name", "value"), BAD_HEADERS)
def test_a_bad_header_from_an_asgi_app_is_a_500_and_one_log_line(asgi_server, name, value):
    start = len(asgi_server.lines)
    reply = exchange(asgi_server.port, get(f"/any/?{query(name, value)}") + get("/any/"))
    assert_one_500_and_closed(reply)
    refused(asgi_server, start, name)


def test_valid_headers_pass_through_unchanged(server, asgi_server):
    path = "?" + query(b"X-Odd_Name.1~!", b"tab\tand spaces, obs-text \xe9")
    expected = b"\r\nX-Odd_Name.1~!: tab\tand spaces, obs-text \xe9\r\n"
    for port, prefix in ((server.port, "/header/"), (asgi_server.port, "/any/")):
        reply = exchange(port, get(prefix + path, close=True))
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
        assert expected in reply


@pytest.mark.parametrize(("name", "value"), BAD_HEADERS)
@pytest.mark.parametrize("served", ["server", "asgi_server"])
def test_a_bad_header_in_a_websocket_accept_refuses_the_handshake_with_500(
    request, served, name, value
):
    process = request.getfixturevalue(served)
    start = len(process.lines)
    with pytest.raises(HandshakeRefused) as refusal:
        WebSocketClient.connect(process.port, f"/ws/?{query(name, value)}").close()
    assert refusal.value.status == 500
    assert b"x-injected" not in refusal.value.response.lower()
    shown = f"the response header {name.decode('latin-1')!r} has"
    lines = new_lines(process, start, "Refused the WebSocket handshake for /ws/ with 500")
    assert len(lines) == 1, process.output
    assert shown in lines[0]
    # The next handshake, with a good header, is accepted and carries it.
    with WebSocketClient.connect(process.port, f"/ws/?{query(b'X-Test', b'fine')}") as client:
        assert client.headers["x-test"] == "fine"


def test_a_body_of_its_content_length_keeps_the_connection(server):
    reply = exchange(server.port, get("/length/exact/") + get("/header/", close=True))
    assert reply.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert reply.startswith(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n01234HTTP/1.1 200 OK")


@pytest.mark.parametrize("case", ["long", "short"])
def test_a_body_that_disagrees_with_its_content_length_is_a_500(server, case):
    start = len(server.lines)
    reply = exchange(server.port, get(f"/length/{case}/") + get("/header/"))
    assert_one_500_and_closed(reply)
    assert b"smuggled" not in reply
    assert "Answering 500" in length_error(server, start)


@pytest.mark.parametrize("case", ["long-later", "short-later"])
def test_a_streamed_body_that_disagrees_with_its_content_length_is_cut(server, case):
    start = len(server.lines)
    reply = exchange(server.port, get(f"/length/{case}/") + get("/header/"))
    # The head and the parts that fitted went out; then the connection was closed, so the
    # client sees a body short of its Content-Length, and no second response.
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Length: " in head
    declared = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert len(body) < declared
    assert body == b"012"
    assert reply.count(b"HTTP/1.1 ") == 1
    assert "Closing the connection" in length_error(server, start)


def h2_client(port: int) -> H2Client:
    """An HTTP/2 connection with prior knowledge."""
    return H2Client(port)


def test_http2_a_body_of_its_content_length_is_sent_and_head_carries_none(server):
    client = h2_client(server.port)
    try:
        status, headers, body = client.response(client.request("GET", "/length/exact/"))
        assert (status, headers[b"content-length"], body) == (200, b"5", b"01234")
        # A HEAD response keeps the Content-Length and drops the body the consumer sent.
        status, headers, body = client.response(client.request("HEAD", "/length/exact/"))
        assert (status, headers[b"content-length"], body) == (200, b"5", b"")
    finally:
        client.close()


@pytest.mark.parametrize("case", ["long", "short"])
def test_http2_a_body_that_disagrees_with_its_content_length_is_a_500(server, case):
    start = len(server.lines)
    client = h2_client(server.port)
    try:
        status, _headers, body = client.response(client.request("GET", f"/length/{case}/"))
        assert status == 500
        assert b"smuggled" not in body
        # The connection goes on: only the stream failed.
        assert client.response(client.request("GET", "/length/exact/"))[2] == b"01234"
    finally:
        client.close()
    assert "Answering 500" in length_error(server, start)


@pytest.mark.parametrize("case", ["long-later", "short-later"])
def test_http2_a_streamed_body_that_disagrees_with_its_content_length_resets_its_stream(
    server, case
):
    start = len(server.lines)
    client = h2_client(server.port)
    try:
        with pytest.raises(ConnectionResetError, match="INTERNAL_ERROR"):
            client.response(client.request("GET", f"/length/{case}/"))
        received = b"".join(
            event.data for event in client.events if isinstance(event, DataReceived)
        )
        assert received == b"012"
        assert client.response(client.request("GET", "/length/exact/"))[2] == b"01234"
    finally:
        client.close()
    assert "Resetting the stream" in length_error(server, start)
