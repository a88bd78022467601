"""Data binding over WebSocket: Channels 1's ``channels.binding.websockets``.

A :class:`WebsocketBinding` is a :class:`channels_core.binding.Binding` whose messages are
JSON text frames in the demultiplexer's envelope, so a binding is one stream of a
:class:`~channels_ws.WebsocketDemultiplexer`::

    class NoteBinding(WebsocketBinding):
        model = "notes.Note"
        stream = "notes"
        fields = ["title", "body"]

        def group_names(self, instance):
            return ["notes"]

        def has_permission(self, user, action, pk):
            return user.is_authenticated

    class Notes(WebsocketDemultiplexer):
        http_user = True
        consumers = {"notes": NoteBinding.consumer}

        def connection_groups(self, **kwargs):
            return ["notes"]

Every socket in a group gets ``{"stream": "notes", "payload": {"action", "pk", "data",
"model"}}`` when a note is created, updated or deleted, in whatever process; a client sends
``{"stream": "notes", "payload": {"action": "update", "pk": 4, "data": {"title": "..."}}}``
to change one, as ``message.user`` (the demultiplexer's ``http_user`` or ``token_auth``
stores it in the channel session; anonymous otherwise).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from channels_core.binding import Binding
from channels_core.exceptions import ImproperlyConfigured
from channels_core.message import Message

from .auth import channel_session_user
from .consumers import WebsocketMultiplexer


class WebsocketBinding(Binding):
    """A :class:`~channels_core.binding.Binding` speaking the demultiplexer's JSON frames.

    Map :meth:`consumer` to the binding's :attr:`stream` in a
    :class:`~channels_ws.WebsocketDemultiplexer`'s ``consumers``; it acts on the stream's
    ``websocket.receive`` frames and ignores the connect and disconnect. With
    ``channel_session_user = True`` (the default) the acting user is the one stored in the
    channel session.
    """

    model = None
    #: Inbound: ``message.user`` from the channel session (``channel_session_user``).
    channel_session_user: ClassVar[bool] = True

    @classmethod
    def encode(cls, stream: str, payload: dict) -> dict:
        """A text frame: ``{"stream": stream, "payload": payload}`` as JSON."""
        return {"text": json.dumps(WebsocketMultiplexer.envelope(stream, payload))}

    @classmethod
    def get_handler(cls) -> Any:
        """:meth:`trigger_inbound`, with the channel session and user its flags ask for."""
        if cls.channel_session_user:
            return channel_session_user(cls.trigger_inbound)
        return super().get_handler()

    @classmethod
    def consumer(cls, message: Message, **kwargs: Any) -> None:
        """Run the action of a ``websocket.receive`` frame; ignore the connect and the
        disconnect that the demultiplexer hands every stream."""
        multiplexer = kwargs.get("multiplexer")
        if multiplexer is not None and multiplexer.stream != cls.stream:
            raise ImproperlyConfigured(
                f"{cls.__qualname__} is mapped to the stream {multiplexer.stream!r} but sends "
                f"on {cls.stream!r}; map it as consumers = {{{cls.stream!r}: "
                f"{cls.__name__}.consumer}}, or set its stream to {multiplexer.stream!r}."
            )
        if message.channel.name == "websocket.receive":
            super().consumer(message, **kwargs)

    def deserialize(self, message: Message) -> tuple[str, Any, Any]:
        """``(action, pk, data)`` of the frame's JSON payload."""
        return self._unpack(json.loads(message["text"]))


class WebsocketBindingWithMembers(WebsocketBinding):
    """A :class:`WebsocketBinding` that also sends attributes, properties and methods (called
    with no argument) of the instance: ``send_members = ["word_count", "author.name"]``.

    A dotted member is followed through related objects and sent under its name with ``__``
    for each dot (``author__name``); values go through Django's JSON encoder.
    """

    model = None
    send_members: ClassVar[list[str]] = []

    def serialize_data(self, instance: models.Model) -> dict:
        """The bound fields, plus :attr:`send_members`."""
        data = super().serialize_data(instance)
        members = {}
        for name in self.send_members:
            value: Any = instance
            for part in name.split("."):
                value = getattr(value, part)
            members[name.replace(".", "__")] = value() if callable(value) else value
        data.update(json.loads(json.dumps(members, cls=DjangoJSONEncoder)))
        return data


__all__ = ["WebsocketBinding", "WebsocketBindingWithMembers"]
