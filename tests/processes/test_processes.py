"""``channels serve --processes N``: real parents and children on one IPC layer.

The parent binds the listeners once and its children share them; groups reach members in
every child; a child that dies is replaced; SIGHUP replaces the children one at a time with
no failed request, every WebSocket closed with 1012 and the new code served; SIGKILL of the
parent leaves no child behind; SIGTERM drains them all and exits 0.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

import pytest

from channels_core.testing.processes import start_process, wait_until
from channels_ws.testing import WebSocketClient

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent / "proc_project"
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
SERVING = r"Serving with (?P<count>\d+) processes \(pids (?P<pids>[\d, ]+)\)"
TIMEOUT = 30


def serve(
    tmp_path: Path,
    *args: str,
    backend: str = "ipc",
    version: str = "v1",
    endpoint: str = "tcp:0:interface=127.0.0.1",
    pass_fds: tuple[int, ...] = (),
):
    """``channels serve --processes ...`` of the test project, on a free port."""
    version_file = tmp_path / "version"
    version_file.write_text(version)
    return start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            *("--pythonpath", PROJECT, "--settings", "proc_project.settings", "serve"),
            *("--endpoint", endpoint, "--drain-timeout", "5", *args),
        ],
        env={
            "PROC_DATA": str(tmp_path / "ipc"),
            "PROC_VERSION_FILE": str(version_file),
            "PROC_BACKEND": backend,
        },
        pass_fds=pass_fds,
    )


def started(process) -> tuple[int, list[int]]:
    """The shared port and the children's pids, once every child is ready."""
    port = int(process.wait_for_line(LISTENING, TIMEOUT).group("port"))
    pids = process.wait_for_line(SERVING, TIMEOUT).group("pids")
    return port, [int(pid) for pid in pids.split(", ")]


def who(port: int) -> dict:
    """GET /who/ on a new connection: the answering process's version and pid."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/who/", headers={"Connection": "close"})
        reply = connection.getresponse()
        assert reply.status == 200
        return json.loads(reply.read())
    finally:
        connection.close()


def pids_answering(port: int, wanted: set[int], tries: int = 400) -> set[int]:
    """The pids that answered, asking until every one of *wanted* did (or *tries* ran out)."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(who(port)["pid"])
        if wanted <= seen:
            break
    return seen


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc says it is gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    ("value", "shown"), [("0", "0"), ("-1", "-1"), ("abc", "'abc'"), ("1.5", "'1.5'")]
)
def test_a_bad_process_count_is_one_sentence(tmp_path, value, shown):
    with serve(tmp_path, "--processes", value) as server:
        assert server.popen.wait(TIMEOUT) == 1
        assert (
            f"--processes is {shown}; give a whole number of processes of 1 or more, or 'auto'"
            in server.output
        )
        assert "Traceback" not in server.output


def test_the_memory_layer_is_refused_with_several_processes(tmp_path):
    with serve(tmp_path, "--processes", "2", backend="memory") as server:
        assert server.popen.wait(TIMEOUT) == 1
        assert "--processes 2 needs a layer that crosses processes" in server.output
        assert "Use channels-ipc" in server.output
        assert "channels-redis" in server.output


def test_the_processes_share_the_port_and_the_groups(tmp_path):
    with serve(tmp_path, "--processes", "2") as server:
        port, pids = started(server)
        assert len(set(pids)) == 2
        # The kernel spreads new connections over the children sharing the socket.
        assert pids_answering(port, set(pids)) == set(pids)
        # WebSocket members of one group in both children: a group send reaches them all.
        # The kernel may hand a run of connections to the same child: one that lands where a
        # member already is is closed again, and another is tried (400 at most, as above).
        clients, where = [], set()
        try:
            for _ in range(400):
                client = WebSocketClient.connect(port, "/ws/room/")
                client.send_text("pid")
                pid = int(client.receive())
                if pid in where:
                    client.close()
                    client.sock.close()
                    continue
                clients.append(client)
                where.add(pid)
                if where == set(pids):
                    break
            assert where == set(pids)
            clients[0].send_text("hello everyone")
            for client in clients:
                assert client.receive() == "room: hello everyone"
        finally:
            for client in clients:
                client.sock.close()
        assert server.terminate() == 0
        assert not any(alive(pid) for pid in pids)


def test_a_child_that_dies_is_replaced(tmp_path):
    with serve(tmp_path, "--processes", "2") as server:
        port, pids = started(server)
        os.kill(pids[0], signal.SIGKILL)
        line = server.wait_for_line(
            rf"Process \d \(pid {pids[0]}\) exited with signal SIGKILL after [\d.]+ s; "
            r"starting another in 0\.5 s\.",
            TIMEOUT,
        )
        assert line

        def replacement() -> int | None:
            started_pids = re.findall(r"Started process \d \(pid (\d+)\)", server.output)
            fresh = {int(pid) for pid in started_pids} - set(pids)
            return fresh.pop() if fresh else None

        fresh = wait_until(replacement, "a replacement process", TIMEOUT)
        wait_until(
            lambda: fresh in pids_answering(port, {fresh, pids[1]}, tries=50),
            "the replacement answering",
            TIMEOUT,
        )
        assert server.terminate() == 0


def test_sighup_replaces_the_processes_without_a_failed_request(tmp_path):
    with serve(tmp_path, "--processes", "2") as server:
        port, old_pids = started(server)
        clients = [WebSocketClient.connect(port, "/ws/room/") for _ in range(50)]
        failures: list[BaseException] = []
        answers: list[dict] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    answers.append(who(port))
                except BaseException as error:  # every failure counts
                    failures.append(error)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            wait_until(lambda: len(answers) > 20, "requests before the restart", TIMEOUT)
            (tmp_path / "version").write_text("v2")
            server.popen.send_signal(signal.SIGHUP)
            server.wait_for_line("Every process was replaced.", TIMEOUT)
            during = len(answers)
            wait_until(lambda: len(answers) > during + 20, "requests after it", TIMEOUT)
        finally:
            stop.set()
            loader.join(TIMEOUT)
        codes = []
        for client in clients:
            codes.append(client.wait_closed())
            client.sock.close()
        assert failures == []
        assert codes == [1012] * 50
        new_pids = {answer["pid"] for answer in answers[-10:]}
        assert not new_pids & set(old_pids)
        assert {answer["version"] for answer in answers[-10:]} == {"v2"}
        assert not any(alive(pid) for pid in old_pids)
        assert server.terminate() == 0


def test_sigkill_of_the_parent_leaves_no_child(tmp_path):
    with serve(tmp_path, "--processes", "2") as server:
        _, pids = started(server)
        server.popen.send_signal(signal.SIGKILL)
        server.popen.wait(TIMEOUT)
        wait_until(lambda: not any(alive(pid) for pid in pids), "the children gone", TIMEOUT)


def test_auto_is_one_process_per_cpu(tmp_path):
    with serve(tmp_path, "--processes", "auto") as server:
        _, pids = started(server)
        assert len(pids) == (os.cpu_count() or 1)
        assert re.search(r"Started process 0 \(pid \d+\)", server.output)
        assert server.terminate() == 0


def test_a_child_that_keeps_dying_backs_off(tmp_path):
    with serve(tmp_path, "--processes", "2") as server:
        port, pids = started(server)
        # New children cannot import the code any more: each dies at start-up.
        (tmp_path / "version").unlink()
        os.kill(pids[0], signal.SIGKILL)
        server.wait_for_line(r"with signal SIGKILL after [\d.]+ s; starting another in 0\.5 s")
        # Each replacement dies in turn, and waits twice as long as the one before it.
        for delay in ("1.0", "2.0"):
            server.wait_for_line(
                rf"exited with status 1 after [\d.]+ s; starting another in {delay} s", TIMEOUT
            )
        # The code is back: the next replacement serves, the other child served all along.
        (tmp_path / "version").write_text("v3")
        wait_until(
            lambda: "v3" in {who(port)["version"] for _ in range(20)}, "the code back", TIMEOUT
        )
        assert pids[1] in pids_answering(port, {pids[1]})
        assert server.terminate() == 0


def test_udp_datagrams_are_shared_by_the_processes(tmp_path):
    with serve(
        tmp_path,
        "--processes",
        "2",
        *("--protocol", "http", "--protocol", "websocket", "--protocol", "udp"),
        *("--udp", "127.0.0.1:0"),
    ) as server:
        _, pids = started(server)
        port = int(
            server.wait_for_line(r"udp listening on udp:0:interface=127\.0\.0\.1 → "
                                 r"127\.0\.0\.1:(?P<port>\d+)", TIMEOUT).group("port")
        )  # fmt: skip
        assert "is one socket the 2 processes share" in server.output
        answered_by = set()
        for number in range(40):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(TIMEOUT)
                client.sendto(f"ping {number}".encode(), ("127.0.0.1", port))
                data, _ = client.recvfrom(1024)
            text, pid = data.decode().rsplit(" ", 1)
            assert text == f"ping {number}"
            answered_by.add(int(pid))
        # Every datagram is answered, each by one of the children.
        assert answered_by <= set(pids)
        assert server.terminate() == 0


def unix_who(path: Path) -> dict:
    """GET /who/ over the Unix socket *path*."""
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(TIMEOUT)
        client.connect(str(path))
        client.sendall(b"GET /who/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := client.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    return json.loads(body)


def test_a_unix_socket_keeps_its_path_and_mode_through_a_restart(tmp_path):
    path = tmp_path / "channels.sock"
    with serve(tmp_path, "--processes", "2", endpoint=f"unix:{path}:mode=660") as server:
        server.wait_for_line(SERVING, TIMEOUT)
        assert oct(path.stat().st_mode & 0o777) == "0o660"
        assert unix_who(path)["version"] == "v1"
        (tmp_path / "version").write_text("v2")
        server.popen.send_signal(signal.SIGHUP)
        server.wait_for_line("Every process was replaced.", TIMEOUT)
        # The old children stopped accepting without removing the path the new ones share.
        assert path.exists()
        assert oct(path.stat().st_mode & 0o777) == "0o660"
        assert unix_who(path)["version"] == "v2"
        assert server.terminate() == 0


def test_an_inherited_listening_socket_is_served(tmp_path):
    # --fd / fd:fileno=N: a socket this process bound and the server inherits (systemd).
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    try:
        endpoint = f"fd:fileno={listening.fileno()}"
        with serve(tmp_path, endpoint=endpoint, pass_fds=(listening.fileno(),)) as server:
            server.wait_for_line("Channels server ready", TIMEOUT)
            assert who(port)["version"] == "v1"
            assert server.terminate() == 0
        with serve(
            tmp_path, "--processes", "2", endpoint=endpoint, pass_fds=(listening.fileno(),)
        ) as server:
            server.wait_for_line(SERVING, TIMEOUT)
            assert who(port)["version"] == "v1"
            assert server.terminate() == 0
    finally:
        listening.close()


def test_a_burst_of_connections_is_spread_over_the_processes(tmp_path):
    # A burst that waits in the socket's queue (the children were busy: here, stopped) is
    # shared by the children, rather than all landing in the first to run, where its
    # keep-alive and WebSocket connections would stay.
    with serve(tmp_path, "--processes", "2") as server:
        port, pids = started(server)
        clients: list[WebSocketClient] = []
        lock = threading.Lock()

        def connect() -> None:
            client = WebSocketClient.connect(port, "/ws/room/")
            with lock:
                clients.append(client)

        openers = [threading.Thread(target=connect) for _ in range(64)]
        try:
            # Both on one CPU, as on a busy machine.
            for pid in pids:
                os.sched_setaffinity(pid, {min(os.sched_getaffinity(0))})
                os.kill(pid, signal.SIGSTOP)
            for opener in openers:
                opener.start()
            time.sleep(0.5)  # the kernel completes the TCP handshakes and queues them
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
            for opener in openers:
                opener.join(TIMEOUT)
            where = []
            for client in clients:
                client.send_text("pid")
                where.append(int(client.receive()))
            assert len(where) == 64
            assert set(where) == set(pids)
            assert min(where.count(pid) for pid in pids) >= 8
        finally:
            for client in clients:
                client.sock.close()
        assert server.terminate() == 0


def test_reuse_port_gives_each_process_a_socket_of_its_own(tmp_path):
    with serve(
        tmp_path,
        *("--processes", "2", "--reuse-port"),
        *("--protocol", "http", "--protocol", "websocket", "--protocol", "udp"),
        *("--udp", "127.0.0.1:0"),
    ) as server:
        port, pids = started(server)
        udp_port = int(
            server.wait_for_line(r"udp listening on udp:0:interface=127\.0\.0\.1 → "
                                 r"127\.0\.0\.1:(?P<port>\d+)", TIMEOUT).group("port")
        )  # fmt: skip
        assert "has a SO_REUSEPORT socket in each of the 2 processes" in server.output
        # Two sockets on one port, each held by one child (and the parent), not one shared.
        inodes = {pid: listening_inodes(pid, port) for pid in pids}
        assert all(len(found) == 1 for found in inodes.values())
        assert inodes[pids[0]] != inodes[pids[1]]
        # The kernel hashes each new connection (a new source port) to one of them.
        assert pids_answering(port, set(pids)) == set(pids)
        # One UDP client's datagrams (one source address) always reach the same child.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.bind(("127.0.0.1", 0))
            answered_by = set()
            for number in range(20):
                client.sendto(f"ping {number}".encode(), ("127.0.0.1", udp_port))
                data, _ = client.recvfrom(1024)
                text, pid = data.decode().rsplit(" ", 1)
                assert text == f"ping {number}"
                answered_by.add(int(pid))
        assert len(answered_by) == 1
        assert answered_by <= set(pids)
        # A rolling restart hands each socket to the new child: nothing fails meanwhile.
        failures: list[BaseException] = []
        answers: list[dict] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    answers.append(who(port))
                except BaseException as error:  # every failure counts
                    failures.append(error)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            (tmp_path / "version").write_text("v2")
            server.popen.send_signal(signal.SIGHUP)
            server.wait_for_line("Every process was replaced.", TIMEOUT)
            during = len(answers)
            wait_until(lambda: len(answers) > during + 40, "requests after it", TIMEOUT)
        finally:
            stop.set()
            loader.join(TIMEOUT)
        assert failures == []
        assert {answer["version"] for answer in answers[-20:]} == {"v2"}
        assert len({answer["pid"] for answer in answers[-40:]}) == 2
        assert server.terminate() == 0


def listening_inodes(pid: int, port: int) -> set[str]:
    """The inodes of the sockets listening on TCP *port* that process *pid* holds open."""
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            listening.add(fields[9])
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[len("socket:[") : -1])
    return listening & held


@pytest.mark.parametrize("reuse_port", [False, True], ids=["shared", "reuse-port"])
def test_a_tls_endpoint_is_served_by_every_process(tmp_path, certificate, reuse_port):
    key, cert = certificate
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    flags = ["--reuse-port"] if reuse_port else []
    with serve(tmp_path, "--processes", "2", *flags, endpoint=endpoint) as server:
        port = int(server.wait_for_line(r"http listening on ssl:0:\S+ → 127\.0\.0\.1:(\d+)",
                                        TIMEOUT).group(1))  # fmt: skip
        pids = server.wait_for_line(SERVING, TIMEOUT).group("pids")
        pids = {int(pid) for pid in pids.split(", ")}
        context = ssl.create_default_context(cafile=str(cert))
        seen = set()
        for _ in range(400):
            connection = http.client.HTTPSConnection(
                "127.0.0.1", port, timeout=TIMEOUT, context=context
            )
            try:
                connection.request("GET", "/who/", headers={"Connection": "close"})
                reply = connection.getresponse()
                assert reply.status == 200
                seen.add(json.loads(reply.read())["pid"])
            finally:
                connection.close()
            if seen == pids:
                break
        assert seen == pids
        with WebSocketClient.connect(port, "/ws/room/", ssl_context=context) as client:
            client.send_text("pid")
            assert int(client.receive()) in pids
        assert server.terminate() == 0


def test_a_bad_certificate_stops_the_parent_with_one_sentence(tmp_path):
    missing = tmp_path / "nope" / "key.pem"
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={missing}"
    with serve(tmp_path, "--processes", "2", endpoint=endpoint) as server:
        assert server.popen.wait(TIMEOUT) == 1
        assert f"names '{missing}', which cannot be read" in server.output
        assert "Started process" not in server.output
        assert "Traceback" not in server.output
