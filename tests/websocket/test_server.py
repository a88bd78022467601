"""channels-ws served by a real ``channels serve`` process, over real sockets on 127.0.0.1.

The test project (``ws_project``) keeps its database and session files in a temporary
directory shared with this process's helper scripts, so a user logged in there is the user
the server sees through the session cookie.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from channels_core.testing.processes import run, start_process
from channels_ws.frames import Close, Ping, Pong, apply_mask
from channels_ws.testing import ConnectionClosed, HandshakeRefused, WebSocketClient

PROJECT = Path(__file__).resolve().parent / "ws_project"
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
SETUP_USERS = """
import django
django.setup()
from django.contrib.auth import get_user_model, login
from django.contrib.sessions.backends.file import SessionStore
from django.core.management import call_command
call_command("migrate", verbosity=0)
User = get_user_model()
User.objects.create_user("alice", password="x")
User.objects.create_user("tokenuser", password="x")
session = SessionStore()
user = User.objects.get(username="alice")
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


@pytest.fixture(scope="module")
def project_env(tmp_path_factory):
    """The environment of the project's processes, with a migrated database and a session."""
    data = tmp_path_factory.mktemp("ws_project")
    env = {
        "WS_PROJECT_DATA": str(data),
        "DJANGO_SETTINGS_MODULE": "ws_project.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
    }
    result = run([sys.executable, "-c", SETUP_USERS], env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    env["ALICE_SESSION"] = result.stdout.strip()
    return env


def serve(env: dict, *args: str):
    """Start ``channels serve`` for the test project on a free port."""
    return start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            "serve",
            "--endpoint",
            "tcp:0:interface=127.0.0.1",
            *args,
        ],
        env=env,
    )


@pytest.fixture(scope="module")
def server(project_env):
    """One server for the module."""
    with serve(project_env) as process:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        yield process


def test_echo_text_and_bytes(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        client.send_text("hello")
        assert client.receive() == "hello"
        client.send_bytes(b"\x00\x01\xff")
        assert client.receive() == b"\x00\x01\xff"
        client.send_text("ünïcode " * 100)
        assert client.receive() == "ünïcode " * 100
        assert client.close() == 1000


def test_messages_of_one_connection_keep_their_order(server):
    with WebSocketClient.connect(server.port, "/async/") as client:
        for index in range(50):
            client.send_text(str(index))
        assert [client.receive() for _ in range(50)] == [f"{i + 1}:{i}" for i in range(50)]


def test_replies_to_a_client_that_does_not_read_arrive_whole_and_in_order(server):
    # 8,000 replies of 2,000 bytes to a client that reads nothing until they are all sent:
    # more than the sockets' buffers hold, so the server's direct writes must hand the rest
    # to Twisted's queue and keep every later byte behind it.
    with WebSocketClient.connect(server.port, "/flood/") as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        client.send_text("8000")
        time.sleep(1)
        received = [client.receive() for _ in range(8000)]
        assert received == [index.to_bytes(2, "big") * 1000 for index in range(8000)]
        assert client.close() == 1000


def test_permessage_deflate_is_negotiated_and_used(server):
    offer = "permessage-deflate; client_max_window_bits; server_no_context_takeover"
    with WebSocketClient.connect(server.port, "/echo/", deflate=offer) as client:
        assert client.headers["sec-websocket-extensions"] == (
            "permessage-deflate; server_no_context_takeover"
        )
        for _ in range(3):
            client.send_text("squeeze me " * 100)
            assert client.receive() == "squeeze me " * 100


def test_json_and_async_json_consumers(server):
    with WebSocketClient.connect(server.port, "/json/") as client:
        client.send_text(json.dumps({"a": [1, 2]}))
        assert json.loads(client.receive()) == {"echo": {"a": [1, 2]}}
    with WebSocketClient.connect(server.port, "/async-json/") as client:
        client.send_text("[1]")
        assert json.loads(client.receive()) == {"async": [1]}


def test_group_send_reaches_every_member_of_the_room(server):
    with (
        WebSocketClient.connect(server.port, "/chat/lobby/") as first,
        WebSocketClient.connect(server.port, "/chat/lobby/") as second,
        WebSocketClient.connect(server.port, "/chat/other/") as elsewhere,
    ):
        # A round trip proves the other room's connect (and group join) has run.
        elsewhere.send_text("ping")
        assert elsewhere.receive() == "ping"
        second.send_text("hi all")
        assert first.receive() == "hi all"
        assert second.receive() == "hi all"
        first.send_text("second message")
        assert second.receive() == "second message"
        elsewhere.send_text("only here")
        assert elsewhere.receive() == "only here"


def test_disconnect_carries_the_close_code_and_the_last_order(server):
    with WebSocketClient.connect(server.port, "/chat/watchers/") as watcher:
        watcher.send_text("ready")
        assert watcher.receive() == "ready"
        with WebSocketClient.connect(server.port, "/watched/") as watched:
            watched.send_text("one")
            assert watched.receive() == "one"
            assert watched.close(4002) == 4002
        assert watcher.receive() == "bye 4002 2"
        with WebSocketClient.connect(server.port, "/watched/"):
            pass  # dropped without a close frame
        assert watcher.receive() == "bye 1006 1"


def test_demultiplexer_streams(server):
    with WebSocketClient.connect(server.port, "/demux/") as client:
        connected = {json.loads(client.receive())["payload"]["connected"] for _ in range(2)}
        assert connected == {"echo", "other"}
        client.send_text(json.dumps({"stream": "other", "payload": {"n": 1}}))
        assert json.loads(client.receive()) == {
            "stream": "other",
            "payload": {"echo": {"n": 1}, "stream": "other"},
        }


def test_consumer_can_close_with_a_code(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        client.send_text("close 4001")
        assert client.wait_closed() == 4001


def test_consumer_that_raises_closes_with_1011(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        client.send_text("crash")
        assert client.wait_closed() == 1011
    server.wait_for_line(r"The consumer of websocket.receive for /echo/ raised")


def test_a_bad_reply_is_logged_and_the_connection_keeps_serving(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        client.send_text("bad reply")
        server.wait_for_line(r"was refused: 'text' must be a str, not bytes")
        client.send_text("still here")
        assert client.receive() == "still here"


def test_options_from_the_command_line(project_env):
    args = ["--websocket-timeout", "1", "--websocket-compression", "off"]
    args += ["--websocket-allowed-origin", "flag.example"]
    with serve(project_env, *args) as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        origin = [("Origin", "http://flag.example")]
        with WebSocketClient.connect(
            port, "/echo/", headers=origin, deflate="permessage-deflate"
        ) as client:
            assert "sec-websocket-extensions" not in client.headers
            # Past its one-second lifetime, the next sweep closes it normally.
            assert client.wait_closed() == 1000
        with pytest.raises(HandshakeRefused):
            WebSocketClient.connect(port, "/echo/", headers=[("Origin", "http://allowed.example")])
        assert process.terminate() == 0


def test_unmasked_frame_closes_with_1002(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        client.send_raw(b"\x81\x02hi")
        assert client.wait_closed() == 1002


def test_invalid_utf8_closes_with_1007(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        mask = b"\x01\x02\x03\x04"
        client.send_raw(b"\x81\x82" + mask + apply_mask(b"\xc3\x28", mask))
        assert client.wait_closed() == 1007


def test_message_over_the_limit_closes_with_1009(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        client.send_bytes(b"x" * 2000)
        assert client.receive() == b"x" * 2000
        # The settings allow 2048-byte frames: the header alone is enough to refuse it.
        client.send_raw(struct.pack("!BBH", 0x82, 0xFE, 3000) + b"\x00\x00\x00\x00")
        assert client.wait_closed() == 1009


def test_ping_gets_a_pong_and_the_server_pings(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        client.ping(b"are you there")
        events = [client.receive_event()]
        # The server pings every second in the test settings; its ping may come first.
        while type(events[-1]) is Ping and len(events) < 5:
            events.append(client.receive_event())
        assert events[-1] == Pong(b"are you there")
        while type(events[-1]) is not Ping and len(events) < 10:
            events.append(client.receive_event())
        assert events[-1] == Ping(b"")


def test_silent_client_is_dropped_after_the_ping_timeout(server):
    client = WebSocketClient.connect(server.port, "/echo/")
    with client:
        # Never answering pings: the server drops the socket without a close frame.
        while True:
            event = client.receive_event()
            if type(event) is Close:
                break
        assert event == Close(1006)


def test_consumer_refusal_is_403(server):
    with pytest.raises(HandshakeRefused) as refused:
        WebSocketClient.connect(server.port, "/refuse/")
    assert refused.value.status == 403


def test_connect_timeout_refuses_with_403(server):
    with pytest.raises(HandshakeRefused) as refused:
        WebSocketClient.connect(server.port, "/silent/")
    assert refused.value.status == 403
    assert b"no consumer accepted the connection in time" in refused.value.response


def test_connect_that_raises_is_500(server):
    with pytest.raises(HandshakeRefused) as refused:
        WebSocketClient.connect(server.port, "/crash-connect/")
    assert refused.value.status == 500


def test_no_connect_route_accepts_as_channels_1_did(server):
    with WebSocketClient.connect(server.port, "/nowhere/") as client:
        assert client.close() == 1000


def test_subprotocol_chosen_by_the_consumer(server):
    with WebSocketClient.connect(server.port, "/subprotocol/", subprotocols=["a", "b"]) as client:
        assert client.headers["sec-websocket-protocol"] == "b"


def test_origin_in_allowed_hosts_is_accepted(server):
    origin = [("Origin", "https://allowed.example:8443")]
    with WebSocketClient.connect(server.port, "/echo/", headers=origin) as client:
        assert client.close() == 1000


@pytest.mark.parametrize("origin", ["http://evil.example", "null"])
def test_origin_not_in_allowed_hosts_is_403(server, origin):
    with pytest.raises(HandshakeRefused) as refused:
        WebSocketClient.connect(server.port, "/echo/", headers=[("Origin", origin)])
    assert refused.value.status == 403


def test_bad_handshake_version_is_426(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /echo/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 426 Upgrade Required\r\n")


def test_http_user_from_the_session_cookie(server, project_env):
    cookie = [("Cookie", f"sessionid={project_env['ALICE_SESSION']}")]
    with WebSocketClient.connect(server.port, "/whoami/", headers=cookie) as client:
        assert client.receive() == "connect:alice"
        client.send_text("?")
        assert client.receive() == "receive:alice"
    with WebSocketClient.connect(server.port, "/whoami/") as client:
        assert client.receive() == "connect:anonymous"


def test_token_authentication(server):
    with WebSocketClient.connect(server.port, "/token/?token=secret-token") as client:
        client.send_text("?")
        assert client.receive() == "token:tokenuser"
    bearer = [("Authorization", "Bearer secret-token")]
    with WebSocketClient.connect(server.port, "/token/", headers=bearer) as client:
        client.send_text("?")
        assert client.receive() == "token:tokenuser"
    with WebSocketClient.connect(server.port, "/token-setting/?token=secret-token") as client:
        client.send_text("?")
        assert client.receive() == "token:tokenuser"
    with pytest.raises(HandshakeRefused):
        WebSocketClient.connect(server.port, "/token/?token=wrong")


def test_sigterm_closes_every_socket_with_1001(project_env):
    with serve(project_env) as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        clients = [WebSocketClient.connect(port, "/echo/") for _ in range(3)]
        try:
            for client in clients:
                client.send_text("up")
                assert client.receive() == "up"
            codes = []
            readers = [
                threading.Thread(target=lambda c=client: codes.append(c.wait_closed()))
                for client in clients
            ]
            for reader in readers:
                reader.start()
            process.popen.send_signal(signal.SIGTERM)
            for reader in readers:
                reader.join(10)
            assert codes == [1001, 1001, 1001]
            assert process.wait() == 0
        finally:
            for client in clients:
                client.sock.close()


def test_receive_after_close_raises_connection_closed(server):
    with WebSocketClient.connect(server.port, "/echo/") as client:
        client.send_text("close 1000")
        with pytest.raises(ConnectionClosed) as closed:
            client.receive()
        assert closed.value.code == 1000


@pytest.mark.parametrize("path", ["/presence/lobby/", "/sync-presence/hall/"])
def test_presence_joins_states_and_leaves_reach_the_room(server, path):
    def event(client) -> dict:
        return json.loads(client.receive())

    with WebSocketClient.connect(server.port, f"{path}?name=ada") as ada:
        state = event(ada)
        assert state["presence"] == "state"
        ada_channel = state["channel"]
        assert state["members"] == {ada_channel: {"name": "ada"}}
        assert event(ada) == {
            "presence": "join", "group": state["group"], "channel": ada_channel,
            "info": {"name": "ada"},
        }  # fmt: skip
        with WebSocketClient.connect(server.port, f"{path}?name=grace") as grace:
            state = event(grace)
            grace_channel = state["channel"]
            assert state["members"] == {
                ada_channel: {"name": "ada"},
                grace_channel: {"name": "grace"},
            }
            joined = event(ada)
            assert (joined["presence"], joined["channel"]) == ("join", grace_channel)
            assert joined["info"] == {"name": "grace"}
            assert grace.close() == 1000
        left = event(ada)
        assert (left["presence"], left["channel"], left["info"]) == (
            "leave", grace_channel, {"name": "grace"},
        )  # fmt: skip
        assert ada.close() == 1000


def test_a_refused_connection_is_never_present(server):
    with WebSocketClient.connect(server.port, "/presence/refusals/?name=first") as first:
        first_channel = json.loads(first.receive())["channel"]
        json.loads(first.receive())  # its own join
        with pytest.raises(HandshakeRefused):
            WebSocketClient.connect(server.port, "/presence/refusals/?name=no")
        with WebSocketClient.connect(server.port, "/presence/refusals/?name=next") as later:
            assert set(json.loads(later.receive())["members"]) == {
                first_channel,
                json.loads(first.receive())["channel"],
            }


def test_a_reconnecting_connection_recovers_what_its_group_said(server):
    def frame(client) -> dict:
        return json.loads(client.receive())

    def since(**positions) -> str:
        return "channels_since=" + urllib.parse.quote(json.dumps(positions))

    group = "history-r1"
    with WebSocketClient.connect(server.port, "/recover/r1/") as first:
        # A first connection has nothing to recover: the marker says where the group is.
        assert frame(first) == {
            "channels": "recovered", "group": group, "complete": True, "position": None,
        }  # fmt: skip
        for said in ("one", "two"):
            first.send_text(json.dumps({"say": said}))
        one, two = frame(first), frame(first)
        assert (one["said"], one["group"], two["said"]) == ("one", group, "two")
        epoch, offset = one["position"]
        assert two["position"] == [epoch, offset + 1]

        # Back after "one": "two" is recovered, then the marker.
        path = f"/recover/r1/?{since(**{group: one['position']})}"
        with WebSocketClient.connect(server.port, path) as back:
            assert frame(back) == {**two, "recovered": True}
            assert frame(back) == {
                "channels": "recovered", "group": group, "complete": True,
                "position": two["position"],
            }  # fmt: skip
            # Live messages go on, with their positions.
            first.send_text(json.dumps({"say": "three"}))
            assert frame(back)["position"] == [epoch, offset + 2]
            assert frame(first)["said"] == "three"

        # The group keeps 5: after seven more, a client back from "one" missed some.
        for n in range(7):
            first.send_text(json.dumps({"say": f"more {n}"}))
        kept = [frame(first) for _ in range(7)][-5:]
        with WebSocketClient.connect(
            server.port, f"/recover/r1/?{since(**{group: one['position']})}"
        ) as late:
            assert [frame(late) for _ in range(5)] == [{**m, "recovered": True} for m in kept]
            marker = frame(late)
            assert (marker["complete"], marker["position"]) == (False, kept[-1]["position"])
        # A position of another epoch (a restarted store) is not trusted either.
        with WebSocketClient.connect(
            server.port, f"/recover/r1/?{since(**{group: ['another-epoch', 3]})}"
        ) as other:
            assert [frame(other)["said"] for _ in range(5)] == [m["said"] for m in kept]
            assert frame(other)["complete"] is False


@pytest.mark.parametrize("attempt", range(3))
def test_sigterm_waits_for_the_disconnects_of_present_sync_consumers(project_env, attempt):
    # A sync consumer leaving its presence on disconnect needs the layer after the server
    # closed the sockets: the server waits for it, and exits, rather than hanging.
    with serve(project_env) as process:
        port = int(process.wait_for_line(LISTENING).group("port"))
        clients = [
            WebSocketClient.connect(port, f"/sync-presence/stop{attempt}/?name=n{n}")
            for n in range(5)
        ]
        try:
            for client in clients:
                assert json.loads(client.receive())["presence"] == "state"
            assert process.terminate(timeout=15) == 0
            assert "Traceback" not in process.output
        finally:
            for client in clients:
                client.sock.close()
