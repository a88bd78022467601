"""The WebsocketConsumer family, run in-process by the kernel's test helpers on the memory layer."""

from __future__ import annotations

import json

import pytest
from django.contrib.sessions.backends.cache import SessionStore
from django.test import override_settings

from channels_core import Group, Message, route, route_class
from channels_core.exceptions import ImproperlyConfigured
from channels_core.sessions import session_for_reply_channel
from channels_core.testing import Client, SimpleChannelTestCase
from channels_ws import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    AsyncWebsocketDemultiplexer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
    WebsocketMultiplexer,
    enforce_ordering,
    http_session,
)
from channels_ws.auth import resolve_authenticator, token_from_message
from channels_ws.ordering import NEXT_ORDER_KEY, wait_channel

seen: list = []


class Room(WebsocketConsumer):
    def connection_groups(self, room, **kwargs):
        return [f"room-{room}"]

    def receive(self, text=None, bytes=None, room=None, **kwargs):
        self.send(text=f"{room}:{text}" if text is not None else None, bytes=bytes)

    def disconnect(self, message, **kwargs):
        seen.append(("disconnect", message["code"]))


class AsyncRoom(AsyncWebsocketConsumer):
    groups = ["async-room"]

    async def receive(self, text=None, bytes=None, **kwargs):
        await self.send(text=text.upper(), close=4000)


class Compact(JsonWebsocketConsumer):
    @classmethod
    def encode_json(cls, content):
        return json.dumps(content, separators=(",", ":"), sort_keys=True)

    def receive(self, content, **kwargs):
        self.send({"got": content, "b": 1})


class Stream(JsonWebsocketConsumer):
    def receive(self, content, multiplexer, **kwargs):
        multiplexer.send({"echo": content})


class Demux(WebsocketDemultiplexer):
    consumers = {"echo": Stream}


class AsyncStream(AsyncJsonWebsocketConsumer):
    async def connect(self, message, multiplexer, **kwargs):
        await self.accept()
        await multiplexer.send({"hello": multiplexer.stream})

    async def receive(self, content, multiplexer, **kwargs):
        await multiplexer.send({"echo": content})


class AsyncDemux(AsyncWebsocketDemultiplexer):
    consumers = {"one": AsyncStream, "two": AsyncStream}


class Ordered(WebsocketConsumer):
    strict_ordering = True

    def receive(self, text=None, bytes=None, **kwargs):
        seen.append(text)


@enforce_ordering(slight=True)
def slightly_ordered(message):
    seen.append(message.content.get("text", "connect"))


@enforce_ordering(slight=True)
async def slightly_ordered_async(message):
    seen.append(message.content.get("text", "connect"))


@http_session
def session_reader(message):
    session = message.http_session
    message.reply_channel.send({"text": "none" if session is None else session["colour"]})


ROUTES = [
    route_class(Room, path=r"^/room/(?P<room>\w+)/$"),
    route_class(AsyncRoom, path=r"^/async/$"),
    route_class(Compact, path=r"^/compact/$"),
    route_class(Demux, path=r"^/demux/$"),
    route_class(AsyncDemux, path=r"^/async-demux/$"),
    route_class(Ordered, path=r"^/ordered/$"),
    route("websocket.connect", session_reader, path=r"^/session/$"),
    route("websocket.connect", slightly_ordered, path=r"^/slight/$"),
    route("websocket.receive", slightly_ordered, path=r"^/slight/$"),
    route("websocket.connect", slightly_ordered_async, path=r"^/slight-async/$"),
    route("websocket.receive", slightly_ordered_async, path=r"^/slight-async/$"),
]


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "memory", "ROUTING": ROUTES}})
class ConsumerTests(SimpleChannelTestCase):
    def setUp(self):
        super().setUp()
        seen.clear()

    def test_connect_joins_groups_and_accepts_receive_echoes_disconnect_leaves(self):
        client = Client()
        client.send_and_consume("websocket.connect", {"path": "/room/red/", "order": 0})
        assert client.receive() == {"accept": True}
        client.send_and_consume("websocket.receive", {"path": "/room/red/", "text": "hi"})
        assert client.receive() == {"text": "red:hi"}
        client.send_and_consume("websocket.receive", {"path": "/room/red/", "bytes": b"\x01"})
        assert client.receive() == {"bytes": b"\x01"}
        Room.group_send("room-red", text="to all")
        assert client.receive() == {"text": "to all"}
        client.send_and_consume("websocket.disconnect", {"path": "/room/red/", "code": 1001})
        assert seen == [("disconnect", 1001)]
        Group("room-red").send({"text": "gone"})
        assert client.receive() is None

    def test_async_consumer_sends_and_closes(self):
        client = Client()
        client.send_and_consume("websocket.connect", {"path": "/async/"})
        assert client.receive() == {"accept": True}
        client.send_and_consume("websocket.receive", {"path": "/async/", "text": "shout"})
        assert client.receive() == {"text": "SHOUT", "close": 4000}

    def test_json_consumer_with_its_own_encoder(self):
        client = Client()
        client.send_and_consume("websocket.receive", {"path": "/compact/", "text": '{"a": 1}'})
        assert client.receive() == {"text": '{"b":1,"got":{"a":1}}'}
        Compact.group_send("nobody", {"x": 1})

    def test_json_consumer_refuses_binary_frames_clearly(self):
        client = Client()
        with pytest.raises(ValueError, match="got a binary frame on '/compact/'"):
            client.send_and_consume("websocket.receive", {"path": "/compact/", "bytes": b"{}"})

    def test_demultiplexer_routes_payloads_by_stream(self):
        client = Client()
        client.send_and_consume("websocket.connect", {"path": "/demux/"})
        assert client.receive() == {"accept": True}
        frame = json.dumps({"stream": "echo", "payload": {"n": 2}})
        client.send_and_consume("websocket.receive", {"path": "/demux/", "text": frame})
        assert json.loads(client.receive()["text"]) == {
            "stream": "echo",
            "payload": {"echo": {"n": 2}},
        }

    def test_async_demultiplexer_routes_payloads_by_stream_on_the_loop(self):
        client = Client()
        client.send_and_consume("websocket.connect", {"path": "/async-demux/"})
        assert client.receive() == {"accept": True}
        hellos = [json.loads(client.receive()["text"]) for _ in range(2)]
        assert hellos == [
            {"stream": "one", "payload": {"hello": "one"}},
            {"stream": "two", "payload": {"hello": "two"}},
        ]
        frame = json.dumps({"stream": "two", "payload": {"n": 3}})
        client.send_and_consume("websocket.receive", {"path": "/async-demux/", "text": frame})
        assert json.loads(client.receive()["text"]) == {
            "stream": "two",
            "payload": {"echo": {"n": 3}},
        }
        with pytest.raises(ValueError, match="stream 'three', which it does not have"):
            client.send_and_consume(
                "websocket.receive",
                {"path": "/async-demux/", "text": json.dumps({"stream": "three", "payload": {}})},
            )

    def test_demultiplexer_refuses_unknown_streams_and_bad_frames(self):
        client = Client()
        frame = json.dumps({"stream": "nope", "payload": {}})
        with pytest.raises(ValueError, match="stream 'nope', which it does not have"):
            client.send_and_consume("websocket.receive", {"path": "/demux/", "text": frame})
        with pytest.raises(ValueError, match="frames must be JSON objects"):
            client.send_and_consume("websocket.receive", {"path": "/demux/", "text": "[1]"})

    def test_multiplexer_group_send_wraps_the_payload(self):
        client = Client()
        Group("streamers").add(client.reply_channel)
        WebsocketMultiplexer.group_send("streamers", "echo", {"hi": 1})
        assert json.loads(client.receive()["text"]) == {"stream": "echo", "payload": {"hi": 1}}

    def test_strict_ordering_holds_an_early_message_until_its_turn(self):
        client = Client()
        client.send_and_consume("websocket.receive", {"path": "/ordered/", "text": "c", "order": 2})
        assert seen == []
        assert self.get_next_message("websocket.receive") is None
        # Connect (order 0) runs; the parked message (order 2) is still early and stays.
        client.send_and_consume("websocket.connect", {"path": "/ordered/", "order": 0})
        assert client.receive() == {"accept": True}
        assert self.get_next_message("websocket.receive") is None
        assert seen == []
        # Order 1 runs and sends order 2 back to its channel.
        client.send_and_consume("websocket.receive", {"path": "/ordered/", "text": "a", "order": 1})
        assert seen == ["a"]
        client.consume("websocket.receive")
        assert seen == ["a", "c"]
        assert self.get_next_message(wait_channel(client.reply_channel, 2)) is None
        # A message that already ran (a duplicate) is dropped.
        client.send_and_consume("websocket.receive", {"path": "/ordered/", "text": "a", "order": 1})
        assert seen == ["a", "c"]

    def test_slight_ordering_runs_the_connect_first_then_the_rest_as_they_come(self):
        for path in ("/slight/", "/slight-async/"):
            seen.clear()
            client = Client()
            # Before the connect ran: held, all on one wait channel.
            for order, text in ((2, "b"), (1, "a")):
                client.send_and_consume(
                    "websocket.receive", {"path": path, "text": text, "order": order}
                )
            assert seen == []
            assert self.get_next_message("websocket.receive") is None
            # The connect runs and sends both back, in the order they came.
            client.send_and_consume("websocket.connect", {"path": path, "order": 0})
            assert seen == ["connect"]
            client.consume("websocket.receive")
            client.consume("websocket.receive")
            assert seen == ["connect", "b", "a"]
            assert self.get_next_message(wait_channel(client.reply_channel, 1)) is None
            # After it, any order runs at once; the session was written for the connect only.
            for order, text in ((5, "e"), (3, "c")):
                client.send_and_consume(
                    "websocket.receive", {"path": path, "text": text, "order": order}
                )
            assert seen == ["connect", "b", "a", "e", "c"]
            session = session_for_reply_channel(client.reply_channel)
            assert session[NEXT_ORDER_KEY] == 1

    def test_strict_ordering_needs_an_order(self):
        client = Client()
        with pytest.raises(ValueError, match="needs an integer 'order'"):
            client.send_and_consume("websocket.receive", {"path": "/ordered/", "text": "x"})

    def test_http_session_comes_from_the_cookie(self):
        session = SessionStore()
        session["colour"] = "green"
        session.create()
        client = Client()
        cookie = [[b"cookie", f"sessionid={session.session_key}; other=1".encode()]]
        client.send_and_consume("websocket.connect", {"path": "/session/", "headers": cookie})
        assert client.receive() == {"text": "green"}
        client.send_and_consume("websocket.connect", {"path": "/session/", "headers": []})
        assert client.receive() == {"text": "none"}
        stale = [[b"cookie", b"sessionid=doesnotexist0000000000000000000"]]
        client.send_and_consume("websocket.connect", {"path": "/session/", "headers": stale})
        assert client.receive() == {"text": "none"}


def connect_message(**content) -> Message:
    return Message(content, "websocket.connect")


def test_token_from_query_string_then_authorization_header():
    assert token_from_message(connect_message(query_string=b"a=1&token=abc")) == "abc"
    bearer = [[b"authorization", b"Bearer xyz"]]
    assert token_from_message(connect_message(headers=bearer, query_string=b"")) == "xyz"
    assert token_from_message(connect_message(headers=[[b"authorization", b"Basic xyz"]])) is None
    assert token_from_message(connect_message()) is None


def test_a_bad_authenticator_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match=r"'no\.such\.thing', which cannot be imported"):
        resolve_authenticator("no.such.thing")
    with pytest.raises(ImproperlyConfigured, match="CHANNELS_WS_TOKEN_AUTHENTICATOR is None"):
        resolve_authenticator()
    with pytest.raises(ImproperlyConfigured, match="is 3, not a callable"):
        resolve_authenticator(3)
