"""channels_ws.testing.WebsocketTestClient: the site project's WebSocket consumers driven
in-process through ChannelsApplication (no sockets), from unittest-style test cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.test import SimpleTestCase, override_settings

from channels_ws.testing import ConnectionClosed, WebsocketTestClient

SITE = Path(__file__).resolve().parents[1] / "integration" / "site_project"
if str(SITE) not in sys.path:
    sys.path.insert(0, str(SITE))

SITE_LAYERS = {"default": {"BACKEND": "memory", "ROUTING": "site_project.routing.channel_routing"}}


async def shouting_app(scope, receive, send):
    """A bare ASGI WebSocket application: accepts, answers in capitals."""
    await receive()
    await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][-1]})
    while (event := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": event["text"].upper()})


@override_settings(CHANNEL_LAYERS=SITE_LAYERS)
class WebsocketTestClientTests(SimpleTestCase):
    def test_echo_text_bytes_and_a_close_from_the_consumer(self):
        with WebsocketTestClient("/ws/echo/") as client:
            assert client.connect()
            client.send_text("hello")
            assert client.receive() == "hello"
            client.send_bytes(b"\x00\x01")
            assert client.receive() == b"\x00\x01"
            client.send_text("close")
            with pytest.raises(ConnectionClosed) as closed:
                client.receive()
            assert closed.value.code == 4000
            assert client.close_code == 4000

    def test_json_consumer(self):
        with WebsocketTestClient("/ws/json/") as client:
            client.connect()
            client.send_json({"a": [1, 2]})
            assert client.receive_json() == {"echo": {"a": [1, 2]}}

    def test_a_refused_connection(self):
        with WebsocketTestClient("/ws/room/private/") as client:
            assert not client.connect()
            with self.assertRaisesMessage(RuntimeError, "call connect() first"):
                client.send_text("anyone?")

    def test_two_clients_talk_through_a_group(self):
        with (
            WebsocketTestClient("/ws/room/lobby/") as ada,
            WebsocketTestClient("/ws/room/lobby/") as bob,
        ):
            assert ada.connect()
            assert bob.connect()
            ada.send_text("hi bob")
            assert bob.receive() == "lobby: hi bob"
            assert ada.receive() == "lobby: hi bob"

    def test_an_unrouted_path_is_accepted_as_channels_does(self):
        with WebsocketTestClient("/nowhere/") as client:
            assert client.connect()

    def test_silence_fails_the_test_after_the_timeout(self):
        with WebsocketTestClient("/ws/echo/", timeout=0.2) as client:
            client.connect()
            with self.assertRaisesMessage(AssertionError, "did not send anything within 0.2 s"):
                client.receive()

    def test_any_asgi_application_can_be_driven(self):
        with WebsocketTestClient(
            "/x/", application=shouting_app, subprotocols=["v1", "v2"]
        ) as client:
            assert client.connect()
            assert client.subprotocol == "v2"
            client.send_text("quiet")
            assert client.receive() == "QUIET"

    def test_a_relative_path_is_refused_with_a_clear_error(self):
        with self.assertRaisesMessage(ValueError, "give an absolute path such as"):
            WebsocketTestClient("ws/echo/")
