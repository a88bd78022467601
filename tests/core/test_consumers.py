"""Consumers: sync ones in the pool, async ones on the loop, class consumers by method mapping."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.test import override_settings

from channels_core.channel import Channel
from channels_core.consumers import AsyncConsumer, BaseConsumer
from channels_core.dispatch import Dispatcher
from channels_core.exceptions import ImproperlyConfigured
from channels_core.layers import get_channel_layer
from channels_core.routing import Router, route, route_class

MEMORY_LAYERS = {"default": {"BACKEND": "memory"}}


@pytest.fixture
def memory_layer():
    """The real in-memory layer as the default alias, fresh for the test."""
    with override_settings(CHANNEL_LAYERS=MEMORY_LAYERS):
        yield get_channel_layer()


def make_dispatcher(routes) -> Dispatcher:
    return Dispatcher(Router(routes))


async def test_sync_function_consumer_runs_in_a_pool_thread_with_the_message():
    seen = {}

    def consumer(message, room):
        seen["thread"] = threading.current_thread()
        seen["content"] = message.content
        seen["channel"] = message.channel.name
        seen["room"] = room

    dispatcher = make_dispatcher([route("chat", consumer, room=r"^(?P<room>\w+)$")])
    try:
        assert await dispatcher.dispatch("chat", {"room": "lobby"}) is True
    finally:
        dispatcher.close()
    assert seen["thread"] is not threading.main_thread()
    assert seen["thread"].name.startswith("consumer")
    assert seen == {**seen, "content": {"room": "lobby"}, "channel": "chat", "room": "lobby"}


async def test_async_function_consumer_runs_on_the_loop():
    seen = {}

    async def consumer(message):
        seen["loop"] = asyncio.get_running_loop()
        seen["thread"] = threading.current_thread()

    dispatcher = make_dispatcher([route("chat", consumer)])
    try:
        await dispatcher.dispatch("chat", {})
    finally:
        dispatcher.close()
    assert seen["loop"] is asyncio.get_running_loop()
    assert seen["thread"] is threading.main_thread()


class Room(BaseConsumer):
    method_mapping = {"room.join": "join", "room.leave": "leave"}
    calls: list = []

    def join(self, message, name):
        Room.calls.append(("join", self, threading.current_thread(), name, self.kwargs))

    async def leave(self, message, name):
        Room.calls.append(("leave", self, threading.current_thread(), name, self.message))


async def test_class_consumer_maps_channels_to_methods_with_one_instance_per_message():
    Room.calls = []
    dispatcher = make_dispatcher([route_class(Room, name=r"^(?P<name>\w+)$")])
    try:
        await dispatcher.dispatch("room.join", {"name": "ada"})
        await dispatcher.dispatch("room.leave", {"name": "ada"})
    finally:
        dispatcher.close()
    (join, first, join_thread, join_name, kwargs), (leave, second, leave_thread, _, message) = (
        Room.calls
    )
    assert (join, join_name, kwargs) == ("join", "ada", {"name": "ada"})
    assert leave == "leave"
    assert first is not second
    # The sync method ran in the pool, the async one on the loop.
    assert join_thread is not threading.main_thread()
    assert leave_thread is threading.main_thread()
    assert message.channel.name == "room.leave"
    assert Room.channel_names() == {"room.join", "room.leave"}


def test_async_consumer_rejects_a_sync_method():
    with pytest.raises(ImproperlyConfigured, match=r"Bad.receive .* is not 'async def'"):

        class Bad(AsyncConsumer):
            method_mapping = {"websocket.receive": "receive"}

            def receive(self, message):
                pass


def test_mapping_to_a_missing_method_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="has no method 'recieve'"):

        class Typo(BaseConsumer):
            method_mapping = {"websocket.receive": "recieve"}

            def receive(self, message):
                pass


async def test_async_consumer_class_runs_its_methods_on_the_loop():
    seen = []

    class Echo(AsyncConsumer):
        method_mapping = {"echo": "echo"}

        async def echo(self, message):
            seen.append(threading.current_thread())

    dispatcher = make_dispatcher([route_class(Echo)])
    try:
        await dispatcher.dispatch("echo", {})
    finally:
        dispatcher.close()
    assert seen == [threading.main_thread()]


async def test_sync_consumer_can_send_on_a_channel_through_the_loop(memory_layer):
    def consumer(message):
        Channel("results").send({"echo": message["text"]})

    dispatcher = make_dispatcher([route("work", consumer)])
    try:
        await dispatcher.dispatch("work", {"text": "hi"})
    finally:
        dispatcher.close()
    assert await asyncio.wait_for(memory_layer.receive("results"), 5) == {"echo": "hi"}
