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
consumers in a thread, async ones on the loop); a consumer's exception fails the test. The
threads of sync consumers use the test's database connections, so that they see what a
``ChannelTestCase`` test wrote in its transaction.

:class:`SessionClient` adds a browser's side to :class:`Client`: headers, cookies and the
Django session, with ``login()`` and ``force_login()``; ``channels_ws.testing.WSClient`` and
``channels_http.testing.HttpClient`` are its WebSocket and HTTP forms, Channels 1's test
clients.

The layer conformance suite lives beside this module, in
:mod:`channels_core.testing.conformance`.
"""

from __future__ import annotations

from .cases import (
    ChannelTestCase,
    ChannelTestEnvironment,
    ChannelTestMixin,
    SimpleChannelTestCase,
    TransactionChannelTestCase,
    build_test_layer,
)
from .clients import Client, SessionClient, split_path

__all__ = [
    "ChannelTestCase",
    "ChannelTestEnvironment",
    "ChannelTestMixin",
    "Client",
    "SessionClient",
    "SimpleChannelTestCase",
    "TransactionChannelTestCase",
    "build_test_layer",
    "split_path",
]
