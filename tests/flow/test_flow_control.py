"""Write flow control with real servers and clients that do not read (``CHANNELS["WRITE_BUFFER"]``).

Each client shrinks its receive buffer and reads nothing, so what the server's consumers send
piles up in the server: it must stay near the high-water mark, the senders must wait, group
messages must be dropped (and counted) for the slow member only, and the connection must be
closed once it stays paused past the timeout. The server's memory is read from
``/proc/<pid>/status`` while it happens.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from channels_http2.testing import H2Client, H2WebSocket

from channels_core.testing.processes import PeakMemory, channels_command, start_process
from channels_ws.frames import BinaryMessage, Close
from channels_ws.testing import WebSocketClient

PROJECT = Path(__file__).resolve().parent / "flow_project"
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
MIB = 1 << 20
LIMITS = {"high_water": 256 * 1024, "limit": 2 * MIB, "timeout": 1.5}


def serve(limits: dict = LIMITS, *args: str, **env: str):
    """``channels serve`` of the test project with these write-buffer bounds (and *args*)."""
    environment = {
        "DJANGO_SETTINGS_MODULE": "flow_project.settings",
        "FLOW_WRITE_BUFFER": json.dumps(limits),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
        **env,
    }
    return start_process(
        channels_command("serve", "--endpoint", "tcp:0:interface=127.0.0.1", *args),
        env=environment,
    )


def not_reading(client: WebSocketClient) -> WebSocketClient:
    """Make the kernel hold as little as it can for a client that reads nothing."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    return client


def sent_before(process, kind: str, line: str) -> int:
    """How many messages the consumer *kind* had sent (it logs every 50th) when the server
    logged *line*."""
    lines = process.output.splitlines()
    index = next(i for i, text in enumerate(lines) if line in text)
    counts = [int(m[1]) for text in lines[:index] if (m := re.search(kind + r": sent (\d+)", text))]
    return max(counts, default=0)


def read_until_closed(client: WebSocketClient, deadline: float = 10.0) -> tuple[list, int]:
    """Everything the server still sends, up to its close frame (or the connection's end)."""
    client.sock.settimeout(deadline)
    messages = []
    while True:
        event = client.receive_event()
        if type(event) is BinaryMessage:
            messages.append(event.data)
        elif type(event) is Close:
            return messages, event.code


@pytest.fixture
def server():
    with serve() as process:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        yield process


def test_a_consumer_sending_to_a_client_that_does_not_read_waits_and_the_client_is_closed_1008(
    server,
):
    # 100 MB in 64 KiB messages to a client that never reads: without flow control the
    # server would buffer all of it.
    with PeakMemory(server.popen.pid) as memory:
        client = not_reading(WebSocketClient.connect(server.port, "/blast/"))
        client.send_text(f"{1600} {64 * 1024}")
        server.wait_for_line(
            r"Closing the WebSocket on /blast/: its client does not read what it is sent "
            r"\(over 262144 unsent bytes for 1\.5 s\)",
            timeout=15,
        )
        # The client finds what was buffered for it, whole and in order, then the close
        # frame (read at once: the server hangs up 5 s after its close frame).
        messages, code = read_until_closed(client)
        server.wait_for_line(r"blast: \d+ of 1600 sent while open", timeout=10)
    # The consumer waited for the client: it had sent a few buffers' worth when the
    # connection was closed, not 100 MB.
    assert sent_before(server, "blast", "Closing the WebSocket") < 200
    assert memory.growth < 30 * MIB, memory.growth
    assert code == 1008, (len(messages), server.output)
    assert [message[:4] for message in messages] == [
        index.to_bytes(4, "big") for index in range(len(messages))
    ]
    client.sock.close()
    assert server.output.count("Closing the WebSocket on /blast/") == 1


def test_an_asgi_application_sending_to_a_client_that_does_not_read_waits_too():
    with serve(LIMITS, "flow_project.asgi:application") as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        with PeakMemory(process.popen.pid) as memory:
            client = not_reading(WebSocketClient.connect(port, "/anything/"))
            client.send_text(f"{1600} {64 * 1024}")
            process.wait_for_line(
                r"Closing the WebSocket on /anything/: its client does not read", timeout=15
            )
            messages, code = read_until_closed(client)
        assert code == 1008
        assert 0 < len(messages) < 200
        assert sent_before(process, "asgi", "Closing the WebSocket") < 200
        assert memory.growth < 30 * MIB, memory.growth
        client.sock.close()


def test_an_http2_stream_whose_window_the_client_does_not_open_waits_then_is_reset():
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.events import DataReceived, StreamEnded, StreamReset

    with serve(LIMITS, FLOW_PROTOCOLS="http,websocket,http2") as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        h2.initiate_connection()
        request = [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", b"127.0.0.1"),
            (b":path", b"/stream/?n=1600&size=65536"),
        ]
        h2.send_headers(1, request, end_stream=True)
        sock.sendall(h2.data_to_send())
        # The client reads nothing and so opens no window: 64 KiB leave, the rest waits.
        with PeakMemory(process.popen.pid) as memory:
            process.wait_for_line(
                r"Closing an HTTP/2 stream for /stream/\?n=1600&size=65536: its client does "
                r"not read what it is sent \(over 262144 unsent bytes for 1\.5 s\)",
                timeout=15,
            )
            process.wait_for_line(r"stream: \d+ of 1600 sent while open", timeout=10)
        assert sent_before(process, "stream", "Closing an HTTP/2 stream") < 200
        assert memory.growth < 30 * MIB, memory.growth
        # The stream was reset; the connection serves the next request in full.
        h2.send_headers(3, [*request[:3], (b":path", b"/stream/?n=3&size=10")], end_stream=True)
        sock.sendall(h2.data_to_send())
        reset = ended = False
        body = b""
        while not (reset and ended):
            events = h2.receive_data(sock.recv(65536))
            for event in events:
                if isinstance(event, StreamReset) and event.stream_id == 1:
                    reset = True
                elif isinstance(event, DataReceived):
                    h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    if event.stream_id == 3:
                        body += event.data
                elif isinstance(event, StreamEnded) and event.stream_id == 3:
                    ended = True
            sock.sendall(h2.data_to_send())
        assert body == b"s" * 30
        sock.close()


def test_a_websocket_over_http2_whose_window_the_client_does_not_open_is_closed_1008():
    with serve(LIMITS, FLOW_PROTOCOLS="http,websocket,http2") as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        client = H2Client(port)
        websocket = H2WebSocket(client, "/blast/")
        assert websocket.wait_status() == 200
        with PeakMemory(process.popen.pid) as memory:
            # Read nothing from now on, so the stream's window stays shut.
            websocket.send_text(f"{1600} {64 * 1024}")
            process.wait_for_line(
                r"Closing the WebSocket on /blast/: its client does not read what it is sent",
                timeout=15,
            )
            process.wait_for_line(r"blast: \d+ of 1600 sent while open", timeout=15)
        assert sent_before(process, "blast", "Closing the WebSocket") < 200
        assert memory.growth < 30 * MIB, memory.growth
        client.sock.close()


def test_group_messages_for_a_member_that_does_not_read_are_dropped_and_counted(server):
    reader = WebSocketClient.connect(server.port, "/room/")
    slow = not_reading(WebSocketClient.connect(server.port, "/room/"))
    received: list[bytes] = []

    def read() -> None:
        reader.sock.settimeout(20)
        while len(received) < 400:
            received.append(reader.receive())

    thread = threading.Thread(target=read)
    thread.start()
    with PeakMemory(server.popen.pid) as memory:
        reader.send_text(f"{400} {64 * 1024}")
        server.wait_for_line(r"room: 400 sent", timeout=30)
        thread.join(timeout=20)
    # The member that reads gets every message, in order: 25 MB.
    assert [message[:4] for message in received] == [i.to_bytes(4, "big") for i in range(400)]
    # The one that does not has its messages dropped once it is over the mark, logged once.
    assert server.output.count("Dropping messages for the WebSocket on /room/") == 1
    assert memory.growth < 20 * MIB, memory.growth
    closing = server.wait_for_line(
        r"Closing the WebSocket on /room/: its client does not read what it is sent", timeout=10
    )
    assert closing
    messages, code = read_until_closed(slow)
    assert code == 1008
    assert 0 < len(messages) < 400
    slow.sock.close()
    reader.sock.close()


def test_a_streaming_response_to_a_client_that_does_not_read_waits_then_is_aborted(server):
    with PeakMemory(server.popen.pid) as memory:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /stream/?n=1600&size=65536 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        server.wait_for_line(
            r"Closing an HTTP connection: its client does not read what it is sent", timeout=15
        )
        server.wait_for_line(r"stream: \d+ of 1600 sent while open", timeout=10)
    assert sent_before(server, "stream", "Closing an HTTP connection") < 200
    assert memory.growth < 30 * MIB, memory.growth
    # The response was cut: the client reads what was buffered, then the connection's end,
    # never a complete chunked body.
    sock.settimeout(10)
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except ConnectionResetError:
        pass
    sock.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert not data.endswith(b"0\r\n\r\n")
    # Another client is served as usual.
    with socket.create_connection(("127.0.0.1", server.port)) as other:
        other.sendall(b"GET /stream/?n=3&size=10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        other.settimeout(10)
        answer = b""
        while not answer.endswith(b"0\r\n\r\n"):
            answer += other.recv(65536)
    assert b"s" * 30 in answer.replace(b"a\r\n", b"").replace(b"\r\n", b"")


def test_a_client_that_reads_slowly_gets_everything(server):
    # Slower than the server sends, but it keeps reading: it is paused and resumed many
    # times, and never closed, and loses nothing sent to it directly.
    with WebSocketClient.connect(server.port, "/blast/") as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        client.send_text(f"{300} {16 * 1024}")
        received = []
        client.sock.settimeout(20)
        while len(received) < 300:
            received.append(client.receive())
            if len(received) % 50 == 0:
                time.sleep(0.2)
        assert [message[:4] for message in received] == [i.to_bytes(4, "big") for i in range(300)]
        server.wait_for_line(r"blast: 300 of 300 sent while open", timeout=10)
        assert "Closing the WebSocket" not in server.output
        assert client.close() == 1000


def test_the_ping_timeout_drops_a_client_that_sends_but_never_reads():
    with serve(FLOW_PING_INTERVAL="0.3", FLOW_PING_TIMEOUT="0.6") as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        with (
            not_reading(WebSocketClient.connect(port, "/room/")) as talker,
            WebSocketClient.connect(port, "/room/") as answering,
        ):
            # This one reads, and so answers pings (receive() does), all along.
            received: list = []
            answering.sock.settimeout(10)
            reader = threading.Thread(target=lambda: received.append(answering.receive()))
            reader.start()
            # A frame every 0.1 s for 3 s: frames do not keep it alive, only pongs would.
            started = time.monotonic()
            while time.monotonic() - started < 3:
                try:
                    talker.send_bytes(b"x")
                except OSError:
                    break
                time.sleep(0.1)
            process.wait_for_line(r"Dropping a WebSocket on /room/: the client answered no ping")
            # The one that answered is still open: a group message reaches it.
            answering.send_text("1 8")
            reader.join(10)
            assert received == [b"\x00\x00\x00\x00" * 2]
            assert process.output.count("answered no ping") == 1


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("[1]", "CHANNELS['WRITE_BUFFER'] is [1]; it must be a dict"),
        ('{"high_water": 0}', "CHANNELS['WRITE_BUFFER']['high_water'] is 0; it must be a whole"),
        ('{"limit": "big"}', "CHANNELS['WRITE_BUFFER']['limit'] is 'big'; it must be a whole"),
        ('{"timeout": -1}', "CHANNELS['WRITE_BUFFER']['timeout'] is -1; it must be a number"),
        ('{"size": 1}', "CHANNELS['WRITE_BUFFER'] has the unknown key(s) ['size']"),
        ('{"high_water": 2048, "limit": 1024}', "'limit'] is 1024, below 'high_water' (2048)"),
    ],
)
def test_bad_write_buffer_settings_stop_the_server_with_one_sentence(value, sentence):
    with serve(limits={}, FLOW_WRITE_BUFFER=value) as process:
        assert process.wait(timeout=30) != 0
        assert sentence in process.output
        assert "Traceback" not in process.output
