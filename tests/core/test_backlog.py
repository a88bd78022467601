"""The listen backlog of every stream listener: ``CHANNELS["BACKLOG"]`` (default 2048) unless
the endpoint gives ``backlog=``. Read back from the kernel with ``ss`` (a listening socket's
Send-Q is its backlog), and shown by a burst of connections that a stopped server does not
accept."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from channels_core.exceptions import ImproperlyConfigured
from channels_core.settings import DEFAULT_BACKLOG, parse_settings
from channels_core.testing.processes import start_process, write_settings

LISTENING = r"http listening on (?P<endpoint>\S+) → (?P<address>\S+)"
SERVING = r"Serving with 2 processes"
TIMEOUT = 30
BURST = 300

needs_ss = pytest.mark.skipif(
    shutil.which("ss") is None, reason="needs ss (Debian: apt-get install iproute2)"
)


def serve(tmp_path: Path, endpoint: str, *args: str, backlog: int | None = None, pass_fds=()):
    """``channels serve`` on *endpoint*, with ``CHANNELS["BACKLOG"]`` = *backlog* if given."""
    channels = {"PROTOCOLS": ["http"]}
    if backlog is not None:
        channels["BACKLOG"] = backlog
    (tmp_path / "backlog_routing.py").write_text("routes = []\n")
    layers = {
        "default": {
            "BACKEND": "ipc",
            "ROUTING": "backlog_routing.routes",
            "CONFIG": {"path": str(tmp_path / "ipc")},
        }
    }
    write_settings(tmp_path, "backlog_settings", CHANNEL_LAYERS=layers, CHANNELS=channels)
    return start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            *("--pythonpath", tmp_path, "--settings", "backlog_settings", "serve"),
            *("--endpoint", endpoint, *args),
        ],
        pass_fds=pass_fds,
    )


def ss_backlog(*arguments: str) -> int:
    """The Send-Q column of the one listening socket ``ss -lH ARGUMENTS`` lists: for a
    listening socket, its backlog."""
    output = subprocess.run(
        ["ss", "-lH", *arguments], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    rows = [line.split() for line in output.splitlines() if line.strip()]
    assert len(rows) == 1, output
    # ss -t: State Recv-Q Send-Q ...; ss -x: Netid State Recv-Q Send-Q ...
    return int(rows[0][3] if rows[0][0] == "u_str" else rows[0][2])


def tcp_backlog(port: int) -> int:
    return ss_backlog("-tn", f"sport = :{port}")


def port_of(process) -> int:
    return int(process.wait_for_line(LISTENING, TIMEOUT).group("address").rsplit(":", 1)[1])


@needs_ss
@pytest.mark.parametrize(
    ("endpoint", "backlog", "expected"),
    [
        ("tcp:0:interface=127.0.0.1", None, DEFAULT_BACKLOG),
        ("tcp:0:interface=127.0.0.1", 300, 300),
        ("tcp:0:interface=127.0.0.1:backlog=77", 300, 77),
    ],
)
def test_a_tcp_listener_queues_the_backlog_setting_or_its_own(
    tmp_path, endpoint, backlog, expected
):
    with serve(tmp_path, endpoint, backlog=backlog) as server:
        assert tcp_backlog(port_of(server)) == expected
        assert server.terminate() == 0


@needs_ss
def test_a_unix_listener_queues_the_backlog_setting(tmp_path):
    path = tmp_path / "s.sock"
    with serve(tmp_path, f"unix:{path}", backlog=300) as server:
        server.wait_for_line("Channels server ready", TIMEOUT)
        assert ss_backlog("-x", "src", str(path)) == 300
        assert server.terminate() == 0


@needs_ss
def test_the_socket_the_processes_share_queues_the_backlog_setting(tmp_path):
    with serve(tmp_path, "tcp:0:interface=127.0.0.1", "--processes", "2", backlog=300) as server:
        port = port_of(server)
        server.wait_for_line(SERVING, TIMEOUT)
        assert tcp_backlog(port) == 300
        assert server.terminate() == 0


@needs_ss
def test_an_inherited_socket_is_given_the_backlog_setting(tmp_path):
    listening = socket.create_server(("127.0.0.1", 0), backlog=5)
    port = listening.getsockname()[1]
    try:
        assert tcp_backlog(port) == 5
        endpoint = f"fd:fileno={listening.fileno()}"
        with serve(tmp_path, endpoint, backlog=300, pass_fds=(listening.fileno(),)) as server:
            server.wait_for_line("Channels server ready", TIMEOUT)
            assert tcp_backlog(port) == 300
            assert server.terminate() == 0
    finally:
        listening.close()


def test_a_burst_waits_in_the_backlog_while_the_server_does_not_accept(tmp_path):
    # With Twisted's backlog of 50, a burst of 300 against a server that does not accept()
    # (stopped here; busy in real life) completes about 51 handshakes, and the other SYNs
    # are dropped until the client retries. With 2048 the kernel completes them all.
    with serve(tmp_path, "tcp:0:interface=127.0.0.1") as server:
        port = port_of(server)
        server.wait_for_line("Channels server ready", TIMEOUT)
        os.kill(server.popen.pid, signal.SIGSTOP)
        clients = []
        try:
            for _ in range(BURST):
                client = socket.socket()
                client.setblocking(False)
                clients.append(client)
                client.connect_ex(("127.0.0.1", port))
            pending = set(clients)
            deadline = time.monotonic() + 10
            while pending and time.monotonic() < deadline:
                _, writable, _ = select.select([], list(pending), [], 0.5)
                pending -= set(writable)
            assert not pending
            errors = [client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) for client in clients]
            assert errors == [0] * BURST
        finally:
            os.kill(server.popen.pid, signal.SIGCONT)
            for client in clients:
                client.close()
        assert server.terminate() == 0


@pytest.mark.parametrize("value", [0, -1, "2048", 2.5, True])
def test_a_bad_backlog_setting_is_one_sentence(value):
    with pytest.raises(ImproperlyConfigured) as error:
        parse_settings(channels={"BACKLOG": value})
    assert str(error.value) == (
        f"CHANNELS['BACKLOG'] is {value!r}; set it to a whole number of 1 or more, the "
        "connections a listener queues before the server accepts them (default 2048)."
    )
