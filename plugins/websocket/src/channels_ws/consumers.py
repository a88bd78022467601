"""The WebsocketConsumer family: Channels 1's generic WebSocket consumers.

::

    class Chat(WebsocketConsumer):
        http_user = True

        def connection_groups(self, room, **kwargs):
            return [f"chat-{room}"]

        def receive(self, text=None, bytes=None, room=None, **kwargs):
            self.group_send(f"chat-{room}", text=text)

    channel_routing = [route_class(Chat, path=r"^/chat/(?P<room>\\w+)/$")]

A new instance handles each message (``self.message``, ``self.kwargs``). ``send``, ``close``
and ``group_send`` block in sync consumers and return awaitables in async ones, like
:class:`~channels_core.Channel` itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels_core.channel import Channel, sync_or_async
from channels_core.consumers import AsyncConsumer, BaseConsumer, get_handler
from channels_core.group import Group
from channels_core.message import Message

from .auth import (
    channel_session_user,
    channel_session_user_from_http,
    channel_session_user_from_token,
)
from .frames import positioned_text
from .ordering import enforce_ordering


def presence_event(
    kind: str, group: str, channel: str, info: dict, members: dict | None = None
) -> dict:
    """A presence message for WebSocket connections: ``kind`` is ``"join"`` or ``"leave"``
    (sent to the group) or ``"state"`` (sent to the connection that joined, with every
    present ``members``: ``{channel: info}``).

    It carries the event twice: as keys (``type`` ``"presence.join"``, ``group``,
    ``channel``, ``info``, and ``members`` for the state) for code that reads group messages,
    and as a JSON text frame (``{"presence": kind, "group", "channel", "info"[, "members"]}``)
    that the WebSocket protocol sends to the browser.
    """
    event: dict[str, Any] = {"presence": kind, "group": group, "channel": channel, "info": info}
    if members is not None:
        event["members"] = members
    return {"type": f"presence.{kind}", **{k: v for k, v in event.items() if k != "presence"},
            "text": json.dumps(event, separators=(",", ":"))}  # fmt: skip


def _content(text: str | None, bytes: bytes | None, close: bool | int) -> dict:
    content: dict[str, Any] = {}
    if text is not None:
        content["text"] = text
    elif bytes is not None:
        content["bytes"] = bytes
    if close:
        content["close"] = close
    return content


class WebsocketConsumer(BaseConsumer):
    """Handles ``websocket.connect``, ``.receive`` and ``.disconnect`` of one route.

    - ``http_user = True``: on connect, the user of the Django session cookie is stored in
      the channel session; every method gets ``message.user`` and ``message.channel_session``.
    - ``token_auth = True``: on connect, the user of the ``?token=`` query parameter or the
      ``Authorization: Bearer`` header, found by ``token_authenticator`` (a callable or its
      dotted path; default the ``CHANNELS_WS_TOKEN_AUTHENTICATOR`` setting), is stored in the
      channel session; then as ``http_user``.
    - ``strict_ordering = True``: messages of a connection run in their ``order`` even when
      several workers take them (see :func:`channels_ws.ordering.enforce_ordering`).
    - ``groups`` or :meth:`connection_groups`: groups joined on connect and left on
      disconnect.
    - ``presence = True``: once accepted, the connection is also present in each of its
      connection groups with :meth:`presence_info` (``Group(name).presence()``), and leaves
      on disconnect. The connection is told who is there (a ``{"presence": "state", ...}``
      text frame), and every member of the group sees the joins and leaves (``{"presence":
      "join"|"leave", ...}``); see :func:`presence_event`.
    - ``recover = True``: once accepted, for each connection group that keeps history, the
      connection gets what the group kept after the position its client gives in the
      ``channels_since`` query parameter (``{"group": [epoch, offset]}`` as JSON, which
      ``channels.js`` sends when it reconnects), marked ``"recovered": true``, then a
      ``{"channels": "recovered", "group", "complete", "position"}`` text frame; see
      :meth:`recover_groups`.
    """

    method_mapping: ClassVar[dict[str, str]] = {
        "websocket.connect": "raw_connect",
        "websocket.receive": "raw_receive",
        "websocket.disconnect": "raw_disconnect",
    }
    http_user: ClassVar[bool] = False
    token_auth: ClassVar[bool] = False
    token_authenticator: ClassVar[Any] = None
    strict_ordering: ClassVar[bool] = False
    groups: ClassVar[list[str] | None] = None
    presence: ClassVar[bool] = False
    recover: ClassVar[bool] = False

    def get_handler(self, message: Message, **kwargs: Any) -> Callable[..., Any]:
        """The mapped method, with the session, user and ordering its flags ask for."""
        handler = super().get_handler(message, **kwargs)
        if self.http_user or self.token_auth:
            if message.channel.name != "websocket.connect":
                handler = channel_session_user(handler)
            elif self.http_user:
                handler = channel_session_user_from_http(handler)
            else:
                # Read through the class: a function stored there must not become a method.
                authenticator = type(self).token_authenticator
                handler = channel_session_user_from_token(authenticator=authenticator)(handler)
        if self.strict_ordering:
            handler = enforce_ordering(handler)
        return handler

    def connection_groups(self, **kwargs: Any) -> list[str]:
        """The groups this connection joins on connect and leaves on disconnect."""
        return list(self.groups or ())

    def presence_info(self, **kwargs: Any) -> dict:
        """The info this connection is present with (``presence = True``): by default the
        user's id and name when one is signed in (``http_user``, ``token_auth``), else
        ``{}``. Override it; keep it small and msgpack-safe."""
        user = getattr(self.message, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            return {"user": user.pk, "name": user.get_username()}
        return {}

    def raw_connect(self, message: Message, **kwargs: Any) -> None:
        """Join the connection groups, then :meth:`connect`."""
        for group in self.connection_groups(**kwargs):
            Group(group).add(message.reply_channel)
        self.connect(message, **kwargs)

    def connect(self, message: Message, **kwargs: Any) -> None:
        """Accept the connection; override to check it first (``self.close()`` refuses)."""
        self.accept()

    def raw_receive(self, message: Message, **kwargs: Any) -> None:
        """:meth:`receive` with the message's text or bytes."""
        self.receive(text=message.get("text"), bytes=message.get("bytes"), **kwargs)

    def receive(self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any) -> None:
        """A message from the client; override it."""

    def raw_disconnect(self, message: Message, **kwargs: Any) -> None:
        """Leave the connection groups (and their presence), then :meth:`disconnect`."""
        channel = str(message.reply_channel)
        for group in self.connection_groups(**kwargs):
            info = Group(group).presence().get(channel) if self.presence else None
            Group(group).discard(message.reply_channel)
            if info is not None:
                Group(group).send(presence_event("leave", group, channel, info))
        self.disconnect(message, **kwargs)

    def disconnect(self, message: Message, **kwargs: Any) -> None:
        """The connection closed (``message["code"]``); override it."""

    def accept(self, subprotocol: str | None = None, headers: list | None = None) -> Any:
        """Accept the connection, optionally with one of the client's subprotocols and
        *headers* (``[name, value]`` pairs) added to the handshake response.

        A demultiplexed consumer's accept does nothing: the demultiplexer accepted.
        """
        if "multiplexer" in self.kwargs:
            return None
        content: dict[str, Any] = {"accept": True}
        if subprotocol is not None:
            content["subprotocol"] = subprotocol
        if headers:
            content["headers"] = headers
        if self.presence or self.recover:
            return sync_or_async(self._accept_and_join, content)
        return self.message.reply_channel.send(content)

    async def _accept_and_join(self, content: dict) -> None:
        """Accept; then be present in each connection group (tell this connection who is
        there, and the group that it joined), and recover what it missed."""
        reply = self.message.reply_channel
        await reply.send(content)
        groups = self.connection_groups(**self.kwargs)
        if self.presence:
            channel = str(reply)
            info = self.presence_info(**self.kwargs)
            for group in groups:
                await Group(group).aadd(channel, presence=info)
                members = await Group(group).apresence()
                await reply.send(presence_event("state", group, channel, info, members))
                await Group(group).asend(presence_event("join", group, channel, info))
        if self.recover:
            await self.recover_groups(groups)

    def recovery_positions(self) -> dict[str, Any]:
        """The positions the client gave (``channels_since``), by group; {} for none or for
        a parameter that is not a JSON object."""
        query = parse_qs(self.message.get("query_string", b"").decode("latin-1"))
        given = query.get("channels_since")
        if not given:
            return {}
        try:
            positions = json.loads(given[-1])
        except ValueError:
            return {}
        return positions if isinstance(positions, dict) else {}

    async def recover_groups(self, groups: list[str]) -> None:
        """For each of *groups* that keeps history, send this connection what it kept after
        the client's position (each message with its position and ``"recovered": true``,
        oldest first), then the ``recovered`` marker with ``complete`` and the group's latest
        position. The connection joined the groups before, so what is sent meanwhile also
        arrives live; the client (``channels.js``) puts the two in order and drops repeats.
        """
        reply = self.message.reply_channel
        positions = self.recovery_positions()
        for name in groups:
            group = Group(name)
            if group.channel_layer.history.for_group(name) is None:
                continue
            since = positions.get(name)
            try:
                history = await group.ahistory(since)
            except ValueError:  # not a position: start over, as for another epoch
                history = await group.ahistory(None)
                history = type(history)(history.messages, False, history.position)
            complete = history.complete if since is not None else True
            for position, content in history.messages if since is not None else ():
                text = positioned_text(content.get("text"), list(position), recovered=True)
                if text is not None:
                    await reply.send({"text": text})
            marker = {
                "channels": "recovered",
                "group": name,
                "complete": complete,
                "position": list(history.position) if history.position else None,
            }
            await reply.send({"text": json.dumps(marker, separators=(",", ":"))})

    def send(self, text: str | None = None, bytes: bytes | None = None, close: bool | int = False):
        """Send text or bytes to this connection, and close it after when *close* is set."""
        return self.message.reply_channel.send(_content(text, bytes, close))

    def close(self, code: bool | int = True) -> Any:
        """Close the connection (True: 1000), or refuse it while connecting."""
        return self.message.reply_channel.send({"close": code})

    @classmethod
    def group_send(
        cls,
        name: str,
        text: str | None = None,
        bytes: bytes | None = None,
        close: bool | int = False,
    ) -> Any:
        """Send text or bytes to every connection of group *name*."""
        return Group(name).send(_content(text, bytes, close))


class AsyncWebsocketConsumer(WebsocketConsumer, AsyncConsumer):
    """:class:`WebsocketConsumer` on the event loop: override ``async def`` methods and
    ``await`` ``send``, ``close``, ``accept`` and ``group_send``."""

    async def raw_connect(self, message: Message, **kwargs: Any) -> None:
        """Join the connection groups, then :meth:`connect`."""
        for group in self.connection_groups(**kwargs):
            await Group(group).aadd(message.reply_channel)
        await self.connect(message, **kwargs)

    async def connect(self, message: Message, **kwargs: Any) -> None:
        """Accept the connection; override to check it first."""
        await self.accept()

    async def accept(self, subprotocol: str | None = None, headers: list | None = None) -> None:
        """Accept the connection (a demultiplexed consumer's accept does nothing)."""
        sending = WebsocketConsumer.accept(self, subprotocol, headers)
        if sending is not None:
            await sending

    async def raw_receive(self, message: Message, **kwargs: Any) -> None:
        """:meth:`receive` with the message's text or bytes."""
        await self.receive(text=message.get("text"), bytes=message.get("bytes"), **kwargs)

    async def receive(
        self, text: str | None = None, bytes: bytes | None = None, **kwargs: Any
    ) -> None:
        """A message from the client; override it."""

    async def raw_disconnect(self, message: Message, **kwargs: Any) -> None:
        """Leave the connection groups (and their presence), then :meth:`disconnect`."""
        channel = str(message.reply_channel)
        for group in self.connection_groups(**kwargs):
            info = (await Group(group).apresence()).get(channel) if self.presence else None
            await Group(group).adiscard(message.reply_channel)
            if info is not None:
                await Group(group).asend(presence_event("leave", group, channel, info))
        await self.disconnect(message, **kwargs)

    async def disconnect(self, message: Message, **kwargs: Any) -> None:
        """The connection closed; override it."""


class JsonMixin:
    """JSON text frames: ``receive(content)`` gets the decoded JSON, ``send(content)`` encodes.

    Override the ``decode_json``/``encode_json`` classmethods for another encoder.
    """

    @classmethod
    def decode_json(cls, text: str) -> Any:
        """Decode a text frame."""
        return json.loads(text)

    @classmethod
    def encode_json(cls, content: Any) -> str:
        """Encode *content* for a text frame."""
        return json.dumps(content)

    def _decoded(self, message: Message) -> Any:
        text = message.get("text")
        if text is None:
            raise ValueError(
                f"{type(self).__qualname__} got a binary frame on {message.get('path')!r}; "
                "JSON consumers take text frames only (use WebsocketConsumer for bytes)."
            )
        return self.decode_json(text)

    def send(self, content: Any, close: bool | int = False) -> Any:
        """Send *content* as JSON (through the multiplexer when demultiplexed)."""
        multiplexer = self.kwargs.get("multiplexer")
        if multiplexer is not None:
            return multiplexer.send(content)
        return self.message.reply_channel.send(_content(self.encode_json(content), None, close))

    @classmethod
    def group_send(cls, name: str, content: Any, close: bool | int = False) -> Any:
        """Send *content* as JSON to every connection of group *name*. When the group keeps
        history, a dict gets the group's name under ``"group"`` (and each connection gets
        its position under ``"position"``), for the browser client to recover from."""
        group = Group(name)
        if (
            isinstance(content, dict)
            and "group" not in content
            and group.channel_layer.history.for_group(name) is not None
        ):
            content = {**content, "group": name}
        return group.send(_content(cls.encode_json(content), None, close))


class JsonWebsocketConsumer(JsonMixin, WebsocketConsumer):
    """A :class:`WebsocketConsumer` speaking JSON: ``receive(content, **kwargs)``."""

    def raw_receive(self, message: Message, **kwargs: Any) -> None:
        """:meth:`receive` with the decoded JSON of a text frame."""
        self.receive(self._decoded(message), **kwargs)

    def receive(self, content: Any, **kwargs: Any) -> None:
        """Decoded JSON from the client; override it."""


class AsyncJsonWebsocketConsumer(JsonMixin, AsyncWebsocketConsumer):
    """:class:`JsonWebsocketConsumer` on the event loop."""

    async def raw_receive(self, message: Message, **kwargs: Any) -> None:
        """:meth:`receive` with the decoded JSON of a text frame."""
        await self.receive(self._decoded(message), **kwargs)

    async def receive(self, content: Any, **kwargs: Any) -> None:
        """Decoded JSON from the client; override it."""


class WebsocketMultiplexer:
    """One stream of a demultiplexed connection: what ``kwargs["multiplexer"]`` is."""

    __slots__ = ("encode_json", "reply_channel", "stream")

    def __init__(self, stream: str, reply_channel: Channel, encode_json: Callable) -> None:
        self.stream = stream
        self.reply_channel = reply_channel
        self.encode_json = encode_json

    def send(self, payload: Any) -> Any:
        """Send *payload* on this stream: ``{"stream": ..., "payload": payload}``."""
        return self.reply_channel.send(
            {"text": self.encode_json(self.envelope(self.stream, payload))}
        )

    @staticmethod
    def envelope(stream: str, payload: Any) -> dict:
        """The frame of *payload* on *stream*."""
        return {"stream": stream, "payload": payload}

    @classmethod
    def group_send(cls, name: str, stream: str, payload: Any) -> Any:
        """Send *payload* on *stream* to every connection of group *name*."""
        return Group(name).send({"text": json.dumps(cls.envelope(stream, payload))})


class DemultiplexerMixin:
    """What the sync and async demultiplexers share: the streams, and how a frame or an
    event reaches a stream's consumer."""

    consumers: ClassVar[dict[str, type]] = {}

    def _handler(self, stream: str, message: Message, kwargs: dict) -> Callable:
        kwargs["multiplexer"] = WebsocketMultiplexer(
            stream, message.reply_channel, self.encode_json
        )
        return get_handler(self.consumers[stream], message, kwargs)

    def _frame(self, content: Any) -> tuple[str, Message]:
        """The stream of a frame, and the message its consumer receives."""
        if not isinstance(content, dict) or not isinstance(content.get("payload"), dict):
            raise ValueError(
                f"{type(self).__qualname__} got {content!r:.80}; frames must be JSON objects "
                '{"stream": name, "payload": {...}}.'
            )
        stream = content.get("stream")
        if stream not in self.consumers:
            raise ValueError(
                f"{type(self).__qualname__} got a frame for the stream {stream!r}, which it "
                f"does not have (streams: {sorted(self.consumers)})."
            )
        message = self.message.copy()
        message.content["text"] = self.encode_json(content["payload"])
        return stream, message


class WebsocketDemultiplexer(DemultiplexerMixin, JsonWebsocketConsumer):
    """Several consumers on one connection: frames are ``{"stream": name, "payload": {...}}``.

    ``consumers = {"echo": EchoConsumer}`` maps streams to consumer classes (sync, usually
    :class:`JsonWebsocketConsumer`). Each gets ``connect`` and ``disconnect``, and the
    ``receive`` of its stream with the payload, with a ``multiplexer`` keyword argument whose
    ``send(payload)`` answers on the same stream and whose ``stream`` names it.
    """

    def _dispatch(self, stream: str, message: Message, **kwargs: Any) -> None:
        self._handler(stream, message, kwargs)(message, **kwargs)

    def connect(self, message: Message, **kwargs: Any) -> None:
        """Accept, and give every stream's consumer its connect."""
        self.accept()
        for stream in self.consumers:
            self._dispatch(stream, message, **kwargs)

    def receive(self, content: Any, **kwargs: Any) -> None:
        """Hand the payload to the consumer of its stream."""
        stream, message = self._frame(content)
        self._dispatch(stream, message, **kwargs)

    def disconnect(self, message: Message, **kwargs: Any) -> None:
        """Give every stream's consumer its disconnect."""
        for stream in self.consumers:
            self._dispatch(stream, message, **kwargs)


class AsyncWebsocketDemultiplexer(DemultiplexerMixin, AsyncJsonWebsocketConsumer):
    """:class:`WebsocketDemultiplexer` on the event loop: the stream consumers are async
    (usually :class:`AsyncJsonWebsocketConsumer`), and their ``multiplexer.send`` is awaited."""

    async def _dispatch(self, stream: str, message: Message, **kwargs: Any) -> None:
        await self._handler(stream, message, kwargs)(message, **kwargs)

    async def connect(self, message: Message, **kwargs: Any) -> None:
        """Accept, and give every stream's consumer its connect."""
        await self.accept()
        for stream in self.consumers:
            await self._dispatch(stream, message, **kwargs)

    async def receive(self, content: Any, **kwargs: Any) -> None:
        """Hand the payload to the consumer of its stream."""
        stream, message = self._frame(content)
        await self._dispatch(stream, message, **kwargs)

    async def disconnect(self, message: Message, **kwargs: Any) -> None:
        """Give every stream's consumer its disconnect."""
        for stream in self.consumers:
            await self._dispatch(stream, message, **kwargs)


__all__ = [
    "AsyncJsonWebsocketConsumer",
    "AsyncWebsocketConsumer",
    "AsyncWebsocketDemultiplexer",
    "JsonWebsocketConsumer",
    "WebsocketConsumer",
    "WebsocketDemultiplexer",
    "WebsocketMultiplexer",
]
