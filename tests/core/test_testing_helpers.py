"""The user-facing test helpers: ChannelTestCase, Client, consume and get_next_message."""

from __future__ import annotations

import threading
import unittest

import pytest
from django.test import override_settings

from channels_core.channel import Channel
from channels_core.exceptions import ImproperlyConfigured
from channels_core.layers import get_channel_layer
from channels_core.routing import route
from channels_core.sessions import channel_session
from channels_core.testing import ChannelTestCase, Client, SimpleChannelTestCase

threads_seen: list[threading.Thread] = []


@channel_session
def chat_receive(message, room):
    threads_seen.append(threading.current_thread())
    history = message.channel_session.setdefault("history", [])
    history.append(message["text"])
    message.channel_session.modified = True
    message.reply_channel.send({"room": room, "text": message["text"], "history": history})


async def notify(message):
    await Channel("notifications").send({"about": message["id"]})


def broken(message):
    raise RuntimeError("consumer bug")


routes = [
    route("websocket.receive", chat_receive, path=r"^/chat/(?P<room>\w+)/$"),
    route("jobs", notify),
    route("broken", broken),
]

ROUTED = {"default": {"BACKEND": "memory", "ROUTING": routes, "TEST_CONFIG": {"capacity": 2}}}


@override_settings(CHANNEL_LAYERS=ROUTED)
class ChatTests(SimpleChannelTestCase):
    def test_client_send_and_consume_and_receive_the_reply(self):
        client = Client()
        client.send_and_consume("websocket.receive", {"path": "/chat/lobby/", "text": "hi"})
        client.send_and_consume("websocket.receive", {"path": "/chat/lobby/", "text": "again"})
        assert client.receive() == {"room": "lobby", "text": "hi", "history": ["hi"]}
        assert client.receive()["history"] == ["hi", "again"]
        assert client.receive() is None
        assert threads_seen[-1] is not threading.main_thread()

    def test_send_consume_and_get_next_message(self):
        self.send("jobs", {"id": 7})
        message = self.consume("jobs")
        assert message.content == {"id": 7}
        assert self.get_next_message("notifications", require=True)["about"] == 7
        assert self.get_next_message("notifications") is None

    def test_the_test_layer_is_fresh_and_uses_test_config(self):
        layer = get_channel_layer()
        assert layer is self.channel_env.layers["default"]
        assert layer.capacity == 2
        assert self.get_next_message("jobs") is None

    def test_consumer_errors_fail_the_test(self):
        self.send("broken", {})
        with pytest.raises(RuntimeError, match="consumer bug"):
            self.consume("broken")

    def test_nothing_to_consume_or_no_route(self):
        with pytest.raises(AssertionError, match="none is waiting"):
            self.consume("jobs")
        assert self.consume("jobs", fail_on_none=False) is None
        self.send("websocket.receive", {"path": "/other/", "text": "x"})
        with pytest.raises(AssertionError, match=r"No route .* matches the message"):
            self.consume("websocket.receive")


@override_settings(CHANNEL_LAYERS=ROUTED)
class DatabaseChatTests(ChannelTestCase):
    def test_channel_test_case_runs_consumers_too(self):
        self.send("jobs", {"id": 1})
        self.consume("jobs")
        assert self.get_next_message("notifications")["about"] == 1


def run_case(case: type, name: str) -> unittest.TestResult:
    result = unittest.TestResult()
    case(name).run(result)
    return result


def test_the_previous_layer_is_restored_after_the_test():
    with override_settings(CHANNEL_LAYERS=ROUTED):
        before = get_channel_layer()
        assert run_case(ChatTests, "test_send_consume_and_get_next_message").wasSuccessful()
        assert get_channel_layer() is before


def test_client_outside_a_test_case_is_a_clear_error():
    with pytest.raises(RuntimeError, match="outside a ChannelTestCase test"):
        Client()


def test_unknown_test_config_key_is_a_clear_error():
    layers = {"default": {"BACKEND": "memory", "TEST_CONFIG": {"hosts": ["redis"]}}}

    class Bad(SimpleChannelTestCase):
        def test_nothing(self):
            pass

    with override_settings(CHANNEL_LAYERS=layers):
        result = run_case(Bad, "test_nothing")
    ((_, error),) = result.errors
    assert ImproperlyConfigured.__name__ in error
    assert "['hosts']" in error
