"""channels_ws.testing.WSClient, Channels 1's test client: the rooms project's consumers
tested the way a Channels 1 project's tests did (login, cookies, JSON), in process; then the
same consumers behind a real ``channels serve``, over real sockets, answering the same."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from channels_core import Group
from channels_core.testing import ChannelTestCase
from channels_core.testing.processes import run, start_process
from channels_http.testing import HttpClient
from channels_ws.testing import HandshakeRefused, WebSocketClient, WSClient

PROJECT = Path(__file__).resolve().parent / "rooms_project"
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

ROOMS = {"default": {"BACKEND": "memory", "ROUTING": "rooms_project.routing.channel_routing"}}
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"

# What the consumers answer, in process and behind the server alike.
ADA_IN_THE_LOBBY = {"user": "ada", "room": "lobby", "text": "hi"}
ADA_S_ROOMS = {"rooms": ["test", "1"], "said": {"text": "hi"}}
ADA_S_REQUEST = {"user": "ada", "method": "GET"}


@pytest.mark.usefixtures("migrated_database")
@override_settings(
    CHANNEL_LAYERS=ROOMS, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
)
class RoomsTests(ChannelTestCase):
    def setUp(self):
        super().setUp()
        self.ada = get_user_model().objects.create_user("ada", password="secret")

    def test_a_logged_in_user_talks_in_a_room(self):
        client = WSClient()
        assert client.login(username="ada", password="secret")
        client.send_and_consume("websocket.connect", path="/rooms/lobby/")
        assert client.receive() is None  # the accept was checked and taken
        client.send_and_consume("websocket.receive", text={"text": "hi"}, path="/rooms/lobby/")
        assert client.receive() == ADA_IN_THE_LOBBY
        assert client.receive() is None

    def test_force_login_and_an_anonymous_neighbour(self):
        ada, anonymous = WSClient(), WSClient()
        ada.force_login(self.ada)
        ada.send_and_consume("websocket.connect", path="/rooms/lobby/")
        anonymous.send_and_consume("websocket.connect", path="/rooms/lobby/")
        anonymous.send_and_consume(
            "websocket.receive", text={"text": "hello"}, path="/rooms/lobby/"
        )
        expected = {"user": "", "room": "lobby", "text": "hello"}
        assert ada.receive() == anonymous.receive() == expected
        anonymous.send_and_consume("websocket.disconnect", path="/rooms/lobby/")
        ada.send_and_consume("websocket.receive", text={"text": "hi"}, path="/rooms/lobby/")
        assert ada.receive() == ADA_IN_THE_LOBBY
        assert anonymous.receive() is None

    def test_a_refusal_fails_the_connect_unless_told(self):
        client = WSClient()
        with pytest.raises(AssertionError, match=r"Connection rejected: .* \{'close': True\}"):
            client.send_and_consume("websocket.connect", path="/rooms/private/")
        client.send_and_consume("websocket.connect", path="/rooms/private/", check_accept=False)
        assert client.receive() == {"close": True}
        client.force_login(self.ada)
        client.send_and_consume("websocket.connect", path="/rooms/private/")

    def test_bad_credentials_log_nobody_in(self):
        client = WSClient()
        assert not client.login(username="ada", password="wrong")
        assert client.get_cookies() == {}

    def test_the_http_session_on_every_message(self):
        client = WSClient()
        client.login(username="ada", password="secret")
        client.session["rooms"] = ["test", "1"]
        client.session.save()
        client.send_and_consume("websocket.connect", path="/lobby/")
        client.send_and_consume("websocket.receive", text={"text": "hi"}, path="/lobby/")
        assert client.receive() == ADA_S_ROOMS

    def test_receive_json_false_and_join_group(self):
        client = WSClient()
        client.join_group("room-lobby")
        Group("room-lobby").send({"text": "plain"})
        Group("room-lobby").send({"text": '{"a": 1}'})
        Group("room-lobby").send({"bytes": b"\x00"})
        assert client.receive(json=False) == "plain"
        assert client.receive() == {"a": 1}
        assert client.receive() == {"bytes": b"\x00"}
        assert client.get_next_message(client.reply_channel) is None
        assert client.channel_layer is self.channel_env.layers["default"]

    def test_the_messages_are_the_servers(self):
        client = WSClient(headers=[("Origin", "http://testserver")])
        client.set_cookie("flavour", "mint")
        client.send("websocket.connect", path="/rooms/a%20b/?x=1")
        client.send("websocket.receive", text="hi", path="/rooms/a%20b/?x=1")
        client.send("websocket.disconnect", path="/rooms/a%20b/")
        connect, receive, disconnect = (
            self.get_next_message(f"websocket.{kind}", require=True).content
            for kind in ("connect", "receive", "disconnect")
        )
        assert connect == {
            "reply_channel": client.reply_channel,
            "path": "/rooms/a b/",
            "query_string": b"x=1",
            "headers": [
                [b"origin", b"http://testserver"],
                [b"host", b"testserver"],
                [b"cookie", b"flavour=mint"],
            ],
            "order": 0,
            "client": ["127.0.0.1", 50000],
            "server": ["testserver", 80],
        }
        assert client.reply_channel.startswith("websocket.send.")
        assert receive == {
            "reply_channel": client.reply_channel,
            "path": "/rooms/a b/",
            "order": 1,
            "text": "hi",
        }
        assert disconnect["order"] == 2
        assert disconnect["code"] == 1000
        with pytest.raises(ValueError, match=r"WSClient\(ordered=False\)"):
            client.send("websocket.receive", {"order": 5})
        WSClient(ordered=False).send("websocket.receive", {"order": 5, "text": "x"})
        assert self.get_next_message("websocket.receive")["order"] == 5

    def test_the_http_consumer_with_the_1x_http_client(self):
        client = HttpClient()
        client.force_login(self.ada)
        client.send_and_consume("http.request", path="/whoami/")
        response = client.receive()
        assert response["status"] == 200
        assert json.loads(response["content"]) == ADA_S_REQUEST


# The same consumers behind channels serve ----------------------------------------------------

SETUP = """
import django
django.setup()
from django.contrib.auth import get_user_model, login
from django.contrib.sessions.backends.file import SessionStore
from django.core.management import call_command
from django.http import HttpRequest
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user("ada", password="secret")
request = HttpRequest()
request.session = SessionStore()
login(request, user, "django.contrib.auth.backends.ModelBackend")
request.session["rooms"] = ["test", "1"]
request.session.save()
print(request.session.session_key)
"""


@pytest.fixture(scope="module")
def rooms_server(tmp_path_factory):
    """``channels serve`` of the rooms project, with ada logged in: (port, session cookie)."""
    env = {
        "ROOMS_PROJECT_DATA": str(tmp_path_factory.mktemp("rooms_project")),
        "DJANGO_SETTINGS_MODULE": "rooms_project.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
    }
    setup = run([sys.executable, "-c", SETUP], env=env, timeout=60)
    assert setup.returncode == 0, setup.stderr
    command = "import sys; from channels_core.cli import main; sys.exit(main())"
    with start_process(
        [sys.executable, "-c", command, "serve", "--endpoint", "tcp:0:interface=127.0.0.1"],
        env=env,
    ) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        yield port, f"sessionid={setup.stdout.strip()}"


def test_the_same_consumers_answer_the_same_behind_channels_serve(rooms_server):
    port, cookie = rooms_server
    with WebSocketClient.connect(port, "/rooms/lobby/", headers=[("Cookie", cookie)]) as client:
        client.send_text(json.dumps({"text": "hi"}))
        assert json.loads(client.receive()) == ADA_IN_THE_LOBBY
        assert client.close() == 1000
    with WebSocketClient.connect(port, "/lobby/", headers=[("Cookie", cookie)]) as client:
        client.send_text(json.dumps({"text": "hi"}))
        assert json.loads(client.receive()) == ADA_S_ROOMS
        assert client.close() == 1000
    with pytest.raises(HandshakeRefused) as refused:
        WebSocketClient.connect(port, "/rooms/private/")
    assert refused.value.status == 403
    request = urllib.request.Request(f"http://127.0.0.1:{port}/whoami/", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == ADA_S_REQUEST
