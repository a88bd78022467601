"""Helpers for testing a project's consumers, in the spirit of Channels 1's test case.

::

    from channels_core.testing import ChannelTestCase, Client

    class ChatTests(ChannelTestCase):
        def test_echo(self):
            client = Client()
            client.send_and_consume("websocket.receive", {"path": "/chat/", "text": "hi"})
            self.assertEqual(client.receive(), {"text": "hi"})

Each test gets a fresh in-memory layer for every alias of ``CHANNEL_LAYERS`` (built with the
alias's ``TEST_CONFIG`` when set), restored afterwards. The helpers are synchronous: each runs
on the test's own event loop, where the routed consumer runs as a worker would run it (sync
consumers in a thread, async ones on the loop); a consumer's exception fails the test.

The layer conformance suite lives beside this module, in
:mod:`channels_core.testing.conformance`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.test import SimpleTestCase, TestCase

from ..dispatch import Dispatcher
from ..exceptions import ImproperlyConfigured
from ..layers import DEFAULT_CHANNEL_LAYER, BaseChannelLayer, channel_layers, resolve_backend
from ..message import Message
from ..routing import Router
from ..settings import get_settings

TEST_BACKEND = "memory"
# A message a stats() call counts as pending is taken at once; the bound only guards a layer
# bug from hanging a test.
RECEIVE_TIMEOUT = 5.0

_active: ChannelTestEnvironment | None = None


def build_test_layer(alias: str) -> BaseChannelLayer:
    """A fresh in-memory layer for *alias*, configured with its ``TEST_CONFIG``."""
    layer_class = resolve_backend(TEST_BACKEND)
    config = get_settings().layer(alias).test_config or {}
    accepted = set(layer_class.base_config_keys) | set(layer_class.config_keys)
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise ImproperlyConfigured(
            f"CHANNEL_LAYERS[{alias!r}]['TEST_CONFIG'] has the keys {unknown}, which the "
            f"in-memory test layer does not take; it takes {', '.join(sorted(accepted))}."
        )
    return layer_class(**config)


class ChannelTestEnvironment:
    """The test layers and the event loop of one test; :class:`ChannelTestMixin` owns one."""

    def __init__(self) -> None:
        self.layers = {alias: build_test_layer(alias) for alias in get_settings().layers}
        self._previous = {
            alias: channel_layers.set(alias, layer) for alias, layer in self.layers.items()
        }
        self._dispatchers: dict[str, Dispatcher] = {}
        self.loop = asyncio.new_event_loop()

    def run(self, awaitable: Any) -> Any:
        """Run *awaitable* on the test's loop and return its result."""
        return self.loop.run_until_complete(awaitable)

    def send(self, channel: str, content: dict, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        """Put *content* on *channel* of the test layer of *alias*."""
        self.run(self.layers[alias].send(channel, content))

    def get_next_message(
        self, channel: str, alias: str = DEFAULT_CHANNEL_LAYER, require: bool = False
    ) -> Message | None:
        """The next message waiting on *channel*, or None (an AssertionError if *require*)."""
        layer = self.layers[alias]
        if self.run(layer.stats(channel)).pending:
            content = self.run(asyncio.wait_for(layer.receive(channel), RECEIVE_TIMEOUT))
            return Message(content, channel, alias)
        if require:
            raise AssertionError(f"Expected a message on {channel!r}, but none is waiting.")
        return None

    def consume(
        self, channel: str, alias: str = DEFAULT_CHANNEL_LAYER, fail_on_none: bool = True
    ) -> Message | None:
        """Take the next message on *channel* and run its routed consumer; return the message.

        Raises AssertionError when no message waits or no route matches it (unless
        *fail_on_none* is false: then returns None), and whatever the consumer raised.
        """
        message = self.get_next_message(channel, alias, require=fail_on_none)
        if message is None:
            return None
        dispatcher = self._dispatchers.get(alias)
        if dispatcher is None:
            dispatcher = self._dispatchers[alias] = Dispatcher(Router.from_alias(alias), alias)
        if not self.run(dispatcher.dispatch(channel, message.content, reraise=True)):
            if fail_on_none:
                raise AssertionError(
                    f"No route of CHANNEL_LAYERS[{alias!r}]['ROUTING'] matches the message on "
                    f"{channel!r} with keys {sorted(message.content)}."
                )
            return None
        return message

    def close(self) -> None:
        """Close the test layers, put the previous layers back and close the loop."""
        try:
            for dispatcher in self._dispatchers.values():
                dispatcher.close()
            for layer in self.layers.values():
                self.run(layer.close())
        finally:
            for alias, previous in self._previous.items():
                channel_layers.set(alias, previous)
            self.loop.close()


class ChannelTestMixin:
    """Swaps in fresh in-memory layers for each test and adds the channel helpers."""

    def setUp(self) -> None:
        global _active
        super().setUp()
        self.channel_env = _active = ChannelTestEnvironment()
        self.addCleanup(self._close_channels)

    def _close_channels(self) -> None:
        global _active
        _active = None
        self.channel_env.close()

    def send(self, channel: str, content: dict, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        """Put *content* on *channel* of the test layer."""
        self.channel_env.send(channel, content, alias)

    def get_next_message(
        self, channel: str, alias: str = DEFAULT_CHANNEL_LAYER, require: bool = False
    ) -> Message | None:
        """The next message on *channel* (say, what a consumer sent), or None."""
        return self.channel_env.get_next_message(channel, alias, require)

    def consume(
        self, channel: str, alias: str = DEFAULT_CHANNEL_LAYER, fail_on_none: bool = True
    ) -> Message | None:
        """Run the routed consumer on the next message of *channel*; return the message."""
        return self.channel_env.consume(channel, alias, fail_on_none)


class SimpleChannelTestCase(ChannelTestMixin, SimpleTestCase):
    """A :class:`django.test.SimpleTestCase` (no database) with the channel helpers."""


class ChannelTestCase(ChannelTestMixin, TestCase):
    """A :class:`django.test.TestCase` (each test in a transaction) with the channel helpers."""


class Client:
    """A fake connection: a reply channel, and sends that carry it.

    Use it inside a :class:`ChannelTestCase` test: ``Client().send_and_consume(channel,
    content)`` puts the message on the test layer with ``reply_channel`` set and runs its
    consumer; ``client.receive()`` is then what the consumer sent back.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        if _active is None:
            raise RuntimeError(
                "Client() is used outside a ChannelTestCase test; create it inside a test "
                "method of a ChannelTestCase or SimpleChannelTestCase."
            )
        self.environment = _active
        self.alias = alias
        self.reply_channel = self.environment.run(
            self.environment.layers[alias].new_channel("test")
        )

    def send(self, channel: str, content: dict | None = None) -> None:
        """Send *content* to *channel*, with this client's ``reply_channel`` unless it has one."""
        content = dict(content or {})
        content.setdefault("reply_channel", self.reply_channel)
        self.environment.send(channel, content, self.alias)

    def consume(self, channel: str, fail_on_none: bool = True) -> Message | None:
        """Run the routed consumer on the next message of *channel*."""
        return self.environment.consume(channel, self.alias, fail_on_none)

    def send_and_consume(
        self, channel: str, content: dict | None = None, fail_on_none: bool = True
    ) -> Message | None:
        """:meth:`send` then :meth:`consume` on *channel*."""
        self.send(channel, content)
        return self.consume(channel, fail_on_none)

    def receive(self) -> dict | None:
        """The content of the next message on this client's reply channel, or None."""
        message = self.environment.get_next_message(self.reply_channel, self.alias)
        return None if message is None else message.content

    def get_next_message(self, channel: str, require: bool = False) -> Message | None:
        """The next message on *channel*, or None."""
        return self.environment.get_next_message(channel, self.alias, require)
