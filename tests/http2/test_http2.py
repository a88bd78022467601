"""channels-http2: real ``channels serve`` processes, real HTTP/2 clients (curl, httpx, and the
``h2``-based client of ``channels_http2.testing`` where a test needs frames no client sends).

Cleartext with prior knowledge and TLS with ALPN on the ``http`` listener; the same consumers
and Django views as HTTP/1.1; bodies both ways past the flow-control windows; streaming;
WebSocket over HTTP/2 (RFC 8441) with permessage-deflate; GOAWAY on drain; and bad input:
rapid reset, CONTINUATION floods, an HPACK bomb, an invalid response header, fuzzed frames.
"""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest
from channels_http2.testing import H2Client, H2WebSocket
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated
from hyperframe.frame import ContinuationFrame, HeadersFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels_core.testing.processes import start_process

PROJECT = Path(__file__).resolve().parent / "h2_project"
LISTENING = r"http listening on (?:tcp|ssl):0:\S+ → 127\.0\.0\.1:(?P<port>\d+)"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TIMEOUT = 10


def serve(*endpoints: str, args: tuple[str, ...] = ()):
    """``channels serve`` of the test project on *endpoints* (a free cleartext port)."""
    endpoints = endpoints or ("tcp:0:interface=127.0.0.1",)
    return start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            *("--pythonpath", PROJECT, "--settings", "h2_project.settings", "serve"),
            *(part for endpoint in endpoints for part in ("--endpoint", endpoint)),
            *("--drain-timeout", "5", *args),
        ]
    )


@pytest.fixture
def server():
    with serve() as running:
        running.port = int(running.wait_for_line(LISTENING, TIMEOUT).group("port"))
        yield running
        assert "Traceback" not in running.output


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def info(client: httpx.Client, url: str, **kwargs) -> dict:
    reply = client.request(kwargs.pop("method", "GET"), url, **kwargs)
    assert reply.status_code == 200, reply.text
    return {"version": reply.http_version, **reply.json()}


# The protocol: cleartext, TLS, the same consumers and views ------------------------------


def test_prior_knowledge_and_http11_share_the_port(server):
    base = f"http://127.0.0.1:{server.port}"
    with httpx.Client(http1=False, http2=True, timeout=TIMEOUT) as h2:
        got = info(h2, f"{base}/info/?a=1")
    assert got["version"] == "HTTP/2"
    assert got["http_version"] == "2"
    assert (got["method"], got["path"], got["query_string"]) == ("GET", "/info/", "a=1")
    # :authority becomes the Host header HTTP/1.1 applications read.
    assert got["headers"]["host"] == f"127.0.0.1:{server.port}"
    with httpx.Client(timeout=TIMEOUT) as h1:
        got = info(h1, f"{base}/info/")
    assert (got["version"], got["http_version"]) == ("HTTP/1.1", "1.1")
    if shutil.which("curl"):
        done = subprocess.run(
            ["curl", "-s", "--http2-prior-knowledge", "-w", "%{http_version}", f"{base}/info/"],
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
        assert done.stdout.endswith(b"}2")


def test_tls_negotiates_h2_or_http11_by_alpn(certificate):
    key, cert = certificate
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    with serve(endpoint) as running:
        port = int(running.wait_for_line(LISTENING, TIMEOUT).group("port"))
        url = f"https://127.0.0.1:{port}"
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(http2=True, verify=context, timeout=TIMEOUT) as h2:
            got = info(h2, f"{url}/info/")
            view = h2.get(f"{url}/view/").json()
        assert (got["version"], got["http_version"], got["scheme"]) == ("HTTP/2", "2", "https")
        assert view["protocol"] == "2"
        assert view["secure"] is True
        with httpx.Client(verify=context, timeout=TIMEOUT) as h1:  # offers http/1.1 only
            assert info(h1, f"{url}/info/")["version"] == "HTTP/1.1"
        assert running.terminate() == 0


def test_django_views_see_http2_and_joined_cookies(server):
    client = H2Client(server.port)
    try:
        stream = client.request("GET", "/view/", headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2")])
        status, _, body = client.response(stream)
    finally:
        client.close()
    assert status == 200
    view = json.loads(body)
    assert view["protocol"] == "2"
    assert view["cookies"] == {"a": "1", "b": "2"}
    assert view["host"] == "127.0.0.1"


def test_bodies_both_ways_pass_the_flow_control_windows(server):
    base = f"http://127.0.0.1:{server.port}"
    body = bytes(range(256)) * 1200  # 300 KiB: four times the initial window
    with httpx.Client(http1=False, http2=True, timeout=TIMEOUT) as client:
        got = info(client, f"{base}/info/", method="POST", content=body)
        assert got["body_length"] == len(body)
        assert got["body_sha"] == __import__("hashlib").sha256(body).hexdigest()
        big = client.get(f"{base}/big/?size=2000000")
        assert big.status_code == 200
        assert big.http_version == "HTTP/2"
        assert big.content == bytes(range(256)) * (2_000_000 // 256)
        # Several big responses at once on one connection share its window.
        streamed = client.get(f"{base}/stream/")
        assert streamed.text == "".join(f"part {n}\n" for n in range(5)) + "end\n"
        too_big = client.post(f"{base}/info/", content=b"x" * 1_100_000)
        assert too_big.status_code == 413
        # The connection is still good after the refusal.
        assert info(client, f"{base}/info/")["http_version"] == "2"


def test_many_streams_at_once_on_one_connection(server):
    client = H2Client(server.port)
    try:
        streams = [client.request("GET", f"/info/?n={n}") for n in range(15)]
        answers = [client.response(stream) for stream in streams]
    finally:
        client.close()
    assert [json.loads(body)["query_string"] for _, _, body in answers] == [
        f"n={n}" for n in range(15)
    ]


# WebSocket over HTTP/2 ------------------------------------------------------------------


def test_websocket_over_extended_connect(server):
    client = H2Client(server.port)
    try:
        # The server offers extended CONNECT in its SETTINGS (RFC 8441, section 3).
        for _ in range(10):
            if client.h2.remote_settings.get(0x8) == 1:
                break
            client.receive()
        assert client.h2.remote_settings.get(0x8) == 1
        socket_one = H2WebSocket(client, "/ws/echo/")
        socket_two = H2WebSocket(client, "/ws/echo/")
        assert socket_one.wait_status() == 200
        assert socket_two.wait_status() == 200
        assert b"sec-websocket-accept" not in socket_one.headers
        socket_one.send_text("one")
        socket_two.send_text("two")
        assert socket_two.receive_text() == "two"
        assert socket_one.receive_text() == "one"
        # Plain requests go on beside the WebSockets.
        status, _, _ = client.response(client.request("GET", "/info/"))
        assert status == 200
        assert socket_one.close() == 1000
        socket_two.send_text("still here")
        assert socket_two.receive_text() == "still here"
    finally:
        client.close()


def test_websocket_over_http2_negotiates_permessage_deflate(server):
    client = H2Client(server.port)
    try:
        socket = H2WebSocket(
            client, "/ws/echo/", headers=[(b"sec-websocket-extensions", b"permessage-deflate")]
        )
        assert socket.wait_status() == 200
        assert socket.headers[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
        text = "compress me " * 50
        socket.send_text(text)
        while True:
            frames_before = socket.buffer
            opcode, payload = socket.receive_frame()
            if opcode == 0x1:
                break
        compressed = frames_before or payload
        # The frame came compressed (RSV1): inflate it as the extension says.
        inflated = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
        assert inflated.decode() == text
        assert len(payload) < len(text)
        del compressed
    finally:
        client.close()


def test_a_connect_without_the_websocket_protocol_is_refused(server):
    client = H2Client(server.port)
    try:
        refused = H2WebSocket(client, "/ws/refuse/")
        assert refused.wait_status() == 403
        stream = client.h2.get_next_available_stream_id()
        client.h2.send_headers(
            stream, [(b":method", b"CONNECT"), (b":authority", b"127.0.0.1:443")]
        )
        client.flush()
        status, _, _ = client.response(stream)
        assert status == 501
        tunnel = client.h2.get_next_available_stream_id()
        client.h2.send_headers(
            tunnel,
            [(b":method", b"CONNECT"), (b":protocol", b"tunnel"), (b":scheme", b"http"),
             (b":path", b"/"), (b":authority", b"127.0.0.1")],
        )  # fmt: skip
        client.flush()
        assert client.response(tunnel)[0] == 400
    finally:
        client.close()
    still_serving(server.port)


# Draining --------------------------------------------------------------------------------


def test_sigterm_sends_goaway_and_lets_open_streams_finish(server):
    # nghttp (nghttp2's client) prints the frames it receives; h2's own client state machine
    # stops at a GOAWAY, so it cannot show the stream finishing after one.
    if shutil.which("nghttp") is None:
        pytest.skip("needs nghttp (Debian: apt-get install nghttp2-client)")
    client = subprocess.Popen(
        ["nghttp", "-v", f"http://127.0.0.1:{server.port}/slow/"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server.wait_for_line("slow started", TIMEOUT)
    started = time.monotonic()
    server.popen.send_signal(signal.SIGTERM)
    output = client.communicate(timeout=TIMEOUT)[0].decode()
    assert client.returncode == 0, output
    goaway = output.index("recv GOAWAY frame")
    assert "error_code=NO_ERROR" in output[goaway:]
    # The open stream's answer came after the GOAWAY.
    assert output.index("slow done") > goaway
    assert server.popen.wait(TIMEOUT) == 0
    assert time.monotonic() - started < 5


# Bad input -------------------------------------------------------------------------------


def still_serving(port: int) -> None:
    with httpx.Client(http1=False, http2=True, timeout=TIMEOUT) as client:
        assert info(client, f"http://127.0.0.1:{port}/info/")["http_version"] == "2"


def test_rapid_reset_is_bounded(server):
    before = rss_kib(server.popen.pid)
    client = H2Client(server.port)
    closed_with = None
    try:
        for _ in range(2000):
            stream = client.request("GET", "/slow/")
            client.h2.reset_stream(stream, ErrorCodes.CANCEL)
            client.flush()
            if client.terminated is not None:
                break
    except (ConnectionError, OSError):
        pass
    try:
        while client.terminated is None:
            client.receive()
        closed_with = client.terminated.error_code
    except (ConnectionError, OSError):
        pass
    finally:
        client.close()
    assert closed_with == ErrorCodes.ENHANCE_YOUR_CALM
    server.wait_for_line("streams reset or refused within 10 s", TIMEOUT)
    still_serving(server.port)
    assert rss_kib(server.popen.pid) - before < 20_000


def test_a_continuation_flood_is_bounded(server):
    before = rss_kib(server.popen.pid)
    client = H2Client(server.port)
    try:
        headers = HeadersFrame(1)
        headers.data = client.h2.encoder.encode([(b":method", b"GET"), (b":path", b"/info/")])
        client.sock.sendall(headers.serialize())
        for _ in range(10_000):
            continuation = ContinuationFrame(1)
            continuation.data = b"\x00" * 1000
            client.sock.sendall(continuation.serialize())
    except OSError:
        pass  # the server closed the connection part of the way: what it should do
    try:
        while client.terminated is None:
            client.receive()
    except (ConnectionError, OSError):
        pass
    finally:
        client.close()
    if client.terminated is not None:
        assert client.terminated.error_code != ErrorCodes.NO_ERROR
    still_serving(server.port)
    assert rss_kib(server.popen.pid) - before < 20_000


def test_an_hpack_bomb_stops_at_the_header_list_limit(server):
    client = H2Client(server.port)
    try:
        # One 4 KiB header indexed once, then referred to 1,000 times: 4 MB decoded.
        value = b"x" * 4000
        first = client.h2.encoder.encode([(b"x-bomb", value)])
        block = client.h2.encoder.encode(
            [(b":method", b"GET"), (b":path", b"/info/"), (b":scheme", b"http"),
             (b":authority", b"127.0.0.1")] + [(b"x-bomb", value)] * 1000
        )  # fmt: skip
        del first
        frame = HeadersFrame(1)
        frame.flags.add("END_HEADERS")
        frame.flags.add("END_STREAM")
        frame.data = block
        client.sock.sendall(frame.serialize())
        while client.terminated is None:
            client.receive()
    except (ConnectionError, OSError):
        pass
    finally:
        client.close()
    assert client.terminated is not None
    assert client.terminated.error_code != ErrorCodes.NO_ERROR
    still_serving(server.port)


def test_an_invalid_response_header_never_reaches_the_wire(server):
    client = H2Client(server.port)
    try:
        status, headers, _ = client.response(client.request("GET", "/bad-header/"))
    except ConnectionResetError:
        status, headers = None, {}
    finally:
        client.close()
    assert status in (500, None)
    assert b"x-injected" not in headers
    still_serving(server.port)


def test_garbage_after_the_preface_is_a_goaway(server):
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(PREFACE + b"\x00\x00\x04\x99\x00\x00\x00\x00\x00garbage-garbage")
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    # The server's SETTINGS, then a GOAWAY frame (type 7), then the close.
    assert b"\x07\x00\x00\x00\x00\x00" in received
    still_serving(server.port)


FRAME = st.tuples(
    st.integers(0, 12),  # frame type (0-9 defined, the rest unknown)
    st.integers(0, 255),  # flags
    st.sampled_from([0, 1, 3, 5, 2, 2**31 - 1]),  # stream id
    st.binary(max_size=64),  # payload
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(FRAME, max_size=12))
def test_fuzzed_frames_never_crash_the_server(fuzz_server, frames):
    import socket

    data = PREFACE
    for kind, flags, stream_id, payload in frames:
        data += struct.pack("!I", len(payload))[1:] + bytes([kind, flags])
        data += struct.pack("!I", stream_id) + payload
    with socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(data)
            sock.settimeout(0.2)
            while sock.recv(65536):
                pass
        except (TimeoutError, OSError):
            pass


@pytest.fixture(scope="module")
def fuzz_server():
    with serve() as running:
        running.port = int(running.wait_for_line(LISTENING, TIMEOUT).group("port"))
        yield running
        still_serving(running.port)
        assert "Traceback" not in running.output
        # A stream left open would hold the drain until its timeout (5 s).
        started = time.monotonic()
        assert running.terminate() == 0
        assert time.monotonic() - started < 4


def test_a_terminated_connection_event_is_seen_by_the_client(server):
    # The client's own GOAWAY: the server closes the connection without an error.
    client = H2Client(server.port)
    try:
        status, _, _ = client.response(client.request("GET", "/info/"))
        assert status == 200
        client.h2.close_connection()
        client.flush()

        def read_until_closed() -> None:
            for _ in range(100):
                client.receive()

        with pytest.raises((ConnectionError, OSError)):
            read_until_closed()
    finally:
        client.close()
    assert not any(isinstance(e, ConnectionTerminated) and e.error_code for e in client.events)
    still_serving(server.port)
