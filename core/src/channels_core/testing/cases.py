"""The channel test cases: a fresh in-memory layer per test, and the helpers to use it.

The threads of sync consumers, and the thread that runs the thread-sensitive
``sync_to_async`` calls of async consumers, use the test's database connections (the test
case's ``databases``), so that a consumer sees what a ``ChannelTestCase`` test wrote in its
transaction, as Channels 1's consumers did by running in the test's thread.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.test import SimpleTestCase, TestCase, TransactionTestCase

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


def active_environment(user: str) -> ChannelTestEnvironment:
    """The environment of the running channel test; RuntimeError naming *user* outside one."""
    if _active is None:
        raise RuntimeError(
            f"{user} is used outside a ChannelTestCase test; use it inside a test method of "
            "a ChannelTestCase, TransactionChannelTestCase or SimpleChannelTestCase."
        )
    return _active


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
    """The test layers and the event loop of one test; :class:`ChannelTestMixin` owns one.

    :param databases: the aliases of the database connections the consumers' threads share
        with the test's thread (the test case's ``databases``), so that a consumer sees the
        test's uncommitted data, as Channels 1's consumers did by running in the test.
    """

    def __init__(self, databases: Iterable[str] | str = ()) -> None:
        from django.db import connections

        if databases == "__all__":  # a test case's own spelling, before Django checks it
            databases = list(connections)
        self.layers = {alias: build_test_layer(alias) for alias in get_settings().layers}
        self._previous = {
            alias: channel_layers.set(alias, layer) for alias, layer in self.layers.items()
        }
        self._dispatchers: dict[str, Dispatcher] = {}
        self.connections = {alias: connections[alias] for alias in sorted(databases)}
        for connection in self.connections.values():
            connection.inc_thread_sharing()
        self.loop = asyncio.new_event_loop()
        # Everything runs in one context, in which thread-sensitive sync_to_async calls (an
        # async consumer's database work) go to a thread of this test's, not asgiref's
        # process-wide one, so that it can use the shared connections too.
        self._context = contextvars.copy_context()
        self._contexts = AsyncExitStack()
        self.run(self._contexts.enter_async_context(ThreadSensitiveContext()))
        if self.connections:
            self.run(sync_to_async(self._share_connections)())

    def _share_connections(self) -> None:
        """Run in each thread that runs consumers' code, first: use the test's connections."""
        from django.db import connections

        for alias, connection in self.connections.items():
            connections[alias] = connection

    def run(self, awaitable: Any) -> Any:
        """Run *awaitable* on the test's loop and return its result."""
        task = self.loop.create_task(_awaited(awaitable), context=self._context)
        return self.loop.run_until_complete(task)

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
            # Closing stale connections, as around a request, would close the shared ones.
            dispatcher = self._dispatchers[alias] = Dispatcher(
                Router.from_alias(alias),
                alias,
                thread_initializer=self._share_connections,
                close_connections=False if self.connections else None,
            )
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
            self.run(self._contexts.aclose())
        finally:
            for alias, previous in self._previous.items():
                channel_layers.set(alias, previous)
            for connection in self.connections.values():
                connection.dec_thread_sharing()
            self.loop.close()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class ChannelTestMixin:
    """Swaps in fresh in-memory layers for each test and adds the channel helpers."""

    def setUp(self) -> None:
        global _active
        super().setUp()
        self.channel_env = _active = ChannelTestEnvironment(getattr(self, "databases", ()))
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


class TransactionChannelTestCase(ChannelTestMixin, TransactionTestCase):
    """A :class:`django.test.TransactionTestCase` (tables emptied after each test) with the
    channel helpers."""
