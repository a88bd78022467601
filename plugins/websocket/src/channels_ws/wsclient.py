"""``WSClient``: Channels 1's WebSocket test client, run in the test's process.

::

    from channels_core.testing import ChannelTestCase
    from channels_ws.testing import WSClient

    class RoomTests(ChannelTestCase):
        def test_room(self):
            client = WSClient()
            client.force_login(User.objects.create_user("ada"))
            client.send_and_consume("websocket.connect", path="/rooms/lobby/")
            client.send_and_consume("websocket.receive", text={"text": "hi"}, path="/rooms/lobby/")
            self.assertEqual(client.receive(), {"user": "ada", "text": "hi"})

The messages are the ones ``channels serve`` puts on the channels: ``websocket.connect``
carries the query string, the headers (with the client's cookies), ``client`` and
``server``; ``websocket.receive`` and ``websocket.disconnect`` carry the path without them,
as a browser sends cookies only with the opening request. ``order`` counts from 0 at each
connect. Sending is putting the message on the test layer; ``consume`` runs its routed
consumer, as :class:`channels_core.testing.Client` does.
"""

from __future__ import annotations

from typing import Any

from channels_core.layers import DEFAULT_CHANNEL_LAYER
from channels_core.message import Message
from channels_core.testing import SessionClient
from channels_core.testing.clients import CLIENT_ADDRESS, SERVER_ADDRESS, Headers

from .asgi import CONNECT, DISCONNECT, RECEIVE, REPLY_PREFIX
from .frames import NORMAL_CLOSURE


class WSClient(SessionClient):
    """A WebSocket connection of a logged-in (or anonymous) browser, for a channel test case.

    ``send_and_consume(channel, content=None, text=None, path="/", fail_on_none=True,
    check_accept=True)`` sends a ``websocket.*`` message as the server would and runs its
    consumer; after ``websocket.connect`` it checks that the consumer accepted (an
    AssertionError otherwise; ``check_accept=False`` to test a refusal). *text* that is not a
    str is sent as JSON. ``receive()`` is the next reply's text decoded from JSON
    (``receive(json=False)``: the text as it is), or the whole reply when it has no text (a
    close, bytes), or None. ``login(**credentials)``, ``force_login(user)``, ``session``,
    ``set_cookie``, ``set_header``, ``join_group``, ``consume``, ``get_next_message``,
    ``channel_layer`` and ``reply_channel`` are as in Channels 1.

    :param headers: headers of the opening request (``host: testserver`` unless given).
    :param ordered: number the ``websocket.*`` messages with ``order``, as the server does
        (Channels 1 numbered them only when asked; here ``order`` may then not be given).
    """

    reply_prefix = REPLY_PREFIX

    def __init__(
        self, alias: str = DEFAULT_CHANNEL_LAYER, headers: Headers = (), ordered: bool = True
    ) -> None:
        super().__init__(alias, headers)
        self.ordered = ordered
        self.order = 0

    def opening(self, channel: str) -> bool:
        """After the handshake the server sends neither the query string nor the headers."""
        return channel not in (RECEIVE, DISCONNECT)

    def content_for(
        self, channel: str, content: dict | None = None, text: Any = None, path: str = "/"
    ) -> dict:
        """The message the server would put on *channel* (see the module docstring)."""
        message = super().content_for(channel, content, text, path)
        if not channel.startswith("websocket."):
            return message
        if channel == CONNECT:
            message.setdefault("client", list(CLIENT_ADDRESS))
            message.setdefault("server", list(SERVER_ADDRESS))
            self.order = 0
        elif channel == DISCONNECT:
            message.setdefault("code", NORMAL_CLOSURE)
        if self.ordered:
            if content and "order" in content:
                raise ValueError(
                    "The message given to WSClient has an 'order', but the client numbers its "
                    "messages itself; make it with WSClient(ordered=False) to set them."
                )
            message["order"] = self.order
            self.order += 1
        return message

    def send_and_consume(
        self,
        channel: str,
        content: dict | None = None,
        text: Any = None,
        path: str = "/",
        fail_on_none: bool = True,
        check_accept: bool = True,
    ) -> Message | None:
        """Send as the server would, run the routed consumer, and after ``websocket.connect``
        check that it accepted (unless *check_accept* is false)."""
        self.send(channel, content, text, path)
        return self.consume(channel, fail_on_none, check_accept)

    def consume(
        self, channel: str, fail_on_none: bool = True, check_accept: bool = True
    ) -> Message | None:
        """Run the routed consumer on the next message of *channel*; after
        ``websocket.connect``, take its answer and fail unless it accepted."""
        message = super().consume(channel, fail_on_none)
        if message is not None and channel == CONNECT and check_accept:
            reply = self.get_next_message(self.reply_channel)
            answer = None if reply is None else reply.content
            if answer is None or answer.get("accept") is not True:
                raise AssertionError(
                    f"Connection rejected: the consumer of websocket.connect answered "
                    f"{answer!r}, not {{'accept': True}}; to test a refusal, pass "
                    "check_accept=False and read the answer with receive()."
                )
        return message
