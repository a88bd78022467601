"""``Message``: what a consumer receives."""

from __future__ import annotations

from typing import Any

from .channel import Channel
from .layers import DEFAULT_CHANNEL_LAYER
from .names import check_channel_name


class Message:
    """A message taken from a channel, as handed to a consumer.

    ``message.content`` is the dict that was sent; ``message["key"]`` and
    ``message.get("key")`` read it. ``message.channel`` is the :class:`Channel` it came on and
    ``message.reply_channel`` the :class:`Channel` named by its ``reply_channel`` key (None
    without one). Decorators add ``channel_session``, ``http_session`` and ``user``.
    """

    __slots__ = (
        "__dict__",
        "_channel",
        "_reply_channel",
        "alias",
        "content",
    )

    def __init__(
        self, content: dict, channel: str | Channel, alias: str = DEFAULT_CHANNEL_LAYER
    ) -> None:
        self.content = content
        self.alias = alias
        # The names are checked now, so a bad one fails here as before, but the Channel
        # objects are made when first read: the dispatcher makes a Message per message, and
        # most consumers read one of the two at most.
        self._channel = channel if isinstance(channel, Channel) else check_channel_name(channel)
        reply = content.get("reply_channel")
        self._reply_channel = check_channel_name(reply) if reply else None

    @property
    def channel(self) -> Channel:
        """The :class:`Channel` the message came on."""
        channel = self._channel
        if isinstance(channel, str):
            channel = self._channel = Channel(channel, alias=self.alias)
        return channel

    @property
    def reply_channel(self) -> Channel | None:
        """The :class:`Channel` named by the ``reply_channel`` key, or None without one."""
        reply = self._reply_channel
        if isinstance(reply, str):
            reply = self._reply_channel = Channel(reply, alias=self.alias)
        return reply

    @property
    def channel_layer(self):
        """The layer the message came on."""
        return self.channel.channel_layer

    def __getitem__(self, key: str) -> Any:
        return self.content[key]

    def __contains__(self, key: str) -> bool:
        return key in self.content

    def get(self, key: str, default: Any = None) -> Any:
        """``content.get(key, default)``."""
        return self.content.get(key, default)

    def copy(self) -> Message:
        """A message with a shallow copy of the content, on the same channel."""
        return Message(dict(self.content), self.channel, self.alias)

    def __repr__(self) -> str:
        return f"<Message on {self.channel.name} keys={sorted(self.content)}>"
