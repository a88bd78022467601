"""Channel sessions: one per reply channel, persisted across messages, sync and async."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from channels_core.consumers import BaseConsumer
from channels_core.dispatch import Dispatcher
from channels_core.exceptions import ImproperlyConfigured
from channels_core.routing import Router, route, route_class
from channels_core.sessions import (
    channel_and_http_session,
    channel_session,
    http_session_user,
    session_for_reply_channel,
    session_key_for,
)


@channel_session
def count_sync(message):
    session = message.channel_session
    session["count"] = session.get("count", 0) + 1
    message.content["seen"] = session["count"]


@channel_session
async def count_async(message):
    session = message.channel_session
    session["count"] = session.get("count", 0) + 1
    message.content["seen"] = session["count"]


class Counter(BaseConsumer):
    method_mapping = {"class.count": "count"}
    channel_session = True

    def count(self, message):
        session = message.channel_session
        session["count"] = session.get("count", 0) + 1
        message.content["seen"] = session["count"]


@pytest.fixture(params=["cache", "file"])
def session_engine(request, tmp_path):
    """The real cache and file session engines (the database one needs migrations)."""
    engine = f"django.contrib.sessions.backends.{request.param}"
    with override_settings(SESSION_ENGINE=engine, SESSION_FILE_PATH=str(tmp_path)):
        yield engine


@pytest.fixture
def dispatcher():
    dispatcher = Dispatcher(
        Router(
            [
                route("sync.count", count_sync),
                route("async.count", count_async),
                route_class(Counter),
            ]
        )
    )
    yield dispatcher
    dispatcher.close()


async def count(dispatcher, channel, reply_channel):
    content = {"reply_channel": reply_channel}
    await dispatcher.dispatch(channel, content, reraise=True)
    return content["seen"]


@pytest.mark.parametrize("channel", ["sync.count", "async.count", "class.count"])
async def test_session_persists_per_reply_channel_and_is_isolated(
    session_engine, dispatcher, channel
):
    first, second = f"{channel}.reply!a", f"{channel}.reply!b"
    assert await count(dispatcher, channel, first) == 1
    assert await count(dispatcher, channel, first) == 2
    assert await count(dispatcher, channel, second) == 1
    assert await count(dispatcher, channel, first) == 3
    stored = session_for_reply_channel(first)
    assert stored["count"] == 3
    assert stored.session_key == session_key_for(first)


def test_session_key_is_deterministic_and_valid():
    key = session_key_for("websocket.send!abc")
    assert key == session_key_for("websocket.send!abc")
    assert key != session_key_for("websocket.send!abd")
    assert len(key) == 32
    assert key.startswith("chn")


@pytest.mark.parametrize("channel", ["sync.count", "async.count"])
async def test_message_without_reply_channel_is_a_clear_error(session_engine, dispatcher, channel):
    with pytest.raises(ValueError, match=rf"message on '{channel}' has no 'reply_channel'"):
        await dispatcher.dispatch(channel, {"text": "hi"}, reraise=True)


def test_channels_session_engine_setting_wins_and_signed_cookies_are_refused():
    layers = {"default": {"BACKEND": "memory"}}
    channels = {"SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies"}
    with (
        override_settings(CHANNEL_LAYERS=layers, CHANNELS=channels),
        pytest.raises(ImproperlyConfigured, match="cannot store channel sessions"),
    ):
        session_for_reply_channel("websocket.send!x")


def test_unknown_engine_is_a_clear_error():
    with (
        override_settings(SESSION_ENGINE="no.such.engine"),
        pytest.raises(ImproperlyConfigured, match=re.escape("'no.such.engine' cannot be imported")),
    ):
        session_for_reply_channel("websocket.send!x")


def _sessions_seen(message):
    http = message.http_session
    message.content["seen"] = {
        "rooms": None if http is None else http.get("rooms"),
        "kept": message.channel_session.get("sessionid"),
    }


@channel_and_http_session
def both_sync(message):
    _sessions_seen(message)


@channel_and_http_session
async def both_async(message):
    _sessions_seen(message)


def _user_seen(message):
    message.content["seen"] = (message.user.is_authenticated, message.http_session is not None)


@http_session_user
def user_sync(message):
    _user_seen(message)


@http_session_user
async def user_async(message):
    _user_seen(message)


@pytest.fixture
def http_dispatcher():
    dispatcher = Dispatcher(
        Router(
            [
                route("both.sync", both_sync),
                route("both.async", both_async),
                route("user.sync", user_sync),
                route("user.async", user_async),
            ]
        )
    )
    yield dispatcher
    dispatcher.close()


def _http_session(**values):
    from importlib import import_module

    from django.conf import settings

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session.update(values)
    session.save()
    return session.session_key


async def _seen(dispatcher, channel, content):
    await dispatcher.dispatch(channel, content, reraise=True)
    return content["seen"]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_channel_and_http_session_keeps_the_cookie_s_session_for_later_messages(
    session_engine, http_dispatcher, kind
):
    key = await sync_to_async(_http_session)(rooms=["a", "b"])
    channel = f"both.{kind}"
    connect = {
        "reply_channel": f"{channel}!a",
        "headers": [[b"cookie", f"sessionid={key}".encode()]],
    }
    assert await _seen(http_dispatcher, channel, connect) == {"rooms": ["a", "b"], "kept": key}
    later = {"reply_channel": f"{channel}!a", "text": "no cookie"}
    assert await _seen(http_dispatcher, channel, later) == {"rooms": ["a", "b"], "kept": key}
    other = {"reply_channel": f"{channel}!b"}
    assert await _seen(http_dispatcher, channel, other) == {"rooms": None, "kept": None}
    unknown = {"reply_channel": f"{channel}!c", "headers": [[b"cookie", b"sessionid=gone"]]}
    assert await _seen(http_dispatcher, channel, unknown) == {"rooms": None, "kept": None}


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_http_session_user_is_anonymous_without_a_logged_in_session(
    session_engine, http_dispatcher, kind
):
    key = await sync_to_async(_http_session)(rooms=[])
    cookie = {"headers": [[b"cookie", f"sessionid={key}".encode()]]}
    assert await _seen(http_dispatcher, f"user.{kind}", cookie) == (False, True)
    assert await _seen(http_dispatcher, f"user.{kind}", {}) == (False, False)
