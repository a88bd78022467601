"""The user-facing test helpers: ChannelTestCase, Client, consume and get_next_message."""

from __future__ import annotations

import threading
import unittest

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings

from channels_core.channel import Channel
from channels_core.exceptions import ImproperlyConfigured
from channels_core.group import Group
from channels_core.layers import get_channel_layer
from channels_core.routing import route
from channels_core.sessions import channel_session, http_session_user
from channels_core.testing import (
    ChannelTestCase,
    Client,
    SessionClient,
    SimpleChannelTestCase,
    TransactionChannelTestCase,
)

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


def count_users(message):
    """A sync consumer reading the database from its thread."""
    users = get_user_model().objects.values_list("username", flat=True)
    message.reply_channel.send(
        {"users": sorted(users), "thread": threading.current_thread().name, "same": same()}
    )


def same():
    from django.db import connection as consumer_connection

    return consumer_connection.connection is connection.connection


def add_user(message):
    get_user_model().objects.create_user(message["username"])


async def count_users_async(message):
    """An async consumer doing its database work as Django's async code does."""
    users = await sync_to_async(count_usernames)()
    await message.reply_channel.send({"users": users})


def count_usernames():
    return sorted(get_user_model().objects.values_list("username", flat=True))


@http_session_user
def whoami(message):
    message.reply_channel.send({"text": message.user.get_username(), "echo": message.content})


routes = [
    route("websocket.receive", chat_receive, path=r"^/chat/(?P<room>\w+)/$"),
    route("jobs", notify),
    route("broken", broken),
    route("users.count", count_users),
    route("users.add", add_user),
    route("users.count.async", count_users_async),
    route("whoami", whoami),
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


@pytest.mark.usefixtures("migrated_database")
@override_settings(
    CHANNEL_LAYERS=ROUTED, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
)
class DatabaseChatTests(ChannelTestCase):
    def test_channel_test_case_runs_consumers_too(self):
        self.send("jobs", {"id": 1})
        self.consume("jobs")
        assert self.get_next_message("notifications")["about"] == 1

    def test_sync_consumers_see_what_the_test_wrote_in_its_transaction(self):
        get_user_model().objects.create_user("ada")
        client = Client()
        client.send_and_consume("users.count")
        reply = client.receive()
        assert reply["users"] == ["ada"]
        assert reply["thread"].startswith("consumer")
        assert reply["same"]
        # And the test sees what they wrote; the connection stays usable after.
        client.send_and_consume("users.add", {"username": "bob"})
        assert get_user_model().objects.filter(username="bob").exists()

    def test_async_consumers_database_work_sees_it_too(self):
        get_user_model().objects.create_user("ada")
        client = Client()
        client.send_and_consume("users.count.async")
        assert client.receive() == {"users": ["ada"]}

    def test_a_session_client_logs_in_and_carries_its_cookies(self):
        get_user_model().objects.create_user("ada", password="secret")
        client = SessionClient()
        assert not client.login(username="ada", password="wrong")
        assert client.login(username="ada", password="secret")
        client.set_cookie("flavour", "mint")
        client.set_header("X-Trace", "7")
        client.send_and_consume("whoami", {"extra": 1}, text={"a": 1}, path="/me/?q=1")
        assert client.receive(json=False) == "ada"
        assert client.receive() is None
        session_key = client.get_cookies()["sessionid"]
        assert client.session.session_key == session_key
        client.send("whoami", {"extra": 1}, text={"a": 1}, path="/me/?q=1")
        sent = self.get_next_message("whoami", require=True).content
        assert sent["reply_channel"] == client.reply_channel
        assert (sent["path"], sent["query_string"]) == ("/me/", b"q=1")
        assert (sent["extra"], sent["text"]) == (1, '{"a": 1}')
        assert sent["headers"] == [
            [b"host", b"testserver"],
            [b"x-trace", b"7"],
            [b"cookie", f"flavour=mint; sessionid={session_key}".encode()],
        ]
        with pytest.raises(ValueError, match="set_cookie"):
            client.set_header("Cookie", "a=b")
        with pytest.raises(ValueError, match="absolute path"):
            client.send("whoami", path="me/")

    def test_session_client_replies_decode_json_text(self):
        client = SessionClient()
        client.join_group("watchers")
        Group("watchers").send({"text": '{"n": 1}'})
        Group("watchers").send({"text": "not json", "more": True})
        assert client.receive() == {"n": 1}
        assert client.receive(json=False) == "not json"
        Group("watchers").send({"close": True})  # (TEST_CONFIG: a capacity of 2)
        assert client.receive() == {"close": True}
        assert client.receive() is None

    def test_the_session_object_is_kept_while_modified(self):
        client = SessionClient()
        client.session["rooms"] = ["a"]
        client.session.save()
        key = client.get_cookies()["sessionid"]
        client.send_and_consume("whoami", path="/")
        reply = client.get_next_message(client.reply_channel, require=True)
        assert reply["echo"]["headers"][-1] == [b"cookie", f"sessionid={key}".encode()]
        assert client.session["rooms"] == ["a"]


@pytest.mark.usefixtures("migrated_database")
@override_settings(CHANNEL_LAYERS=ROUTED)
class TransactionTests(TransactionChannelTestCase):
    def test_a_consumer_writes_and_the_test_reads(self):
        Client().send_and_consume("users.add", {"username": "carol"})
        assert list(get_user_model().objects.values_list("username", flat=True)) == ["carol"]


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
    client = Client()
    with pytest.raises(RuntimeError, match="Client is used outside a ChannelTestCase test"):
        client.send("jobs", {"id": 1})


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
