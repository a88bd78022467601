"""Channel sessions: one per reply channel, persisted across messages, sync and async."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

from channels_core.consumers import BaseConsumer
from channels_core.dispatch import Dispatcher
from channels_core.exceptions import ImproperlyConfigured
from channels_core.routing import Router, route, route_class
from channels_core.sessions import (
    channel_session,
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
