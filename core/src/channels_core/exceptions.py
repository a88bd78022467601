"""Exceptions raised by the kernel and by layers.

Every message is a sentence a user can act on: what was wrong, the value, and the fix.
"""

from __future__ import annotations


class ChannelsError(Exception):
    """Base class of every error Channels raises on purpose."""


class ImproperlyConfigured(ChannelsError):
    """A setting, a CLI option or an installed plugin is wrong; raised at start-up."""


class PluginError(ImproperlyConfigured):
    """A plugin failed to load, or registered something invalid or twice."""


class InvalidChannelName(ChannelsError, ValueError, TypeError):
    """A channel or group name is too long or has characters outside ``[a-zA-Z0-9._-]``.

    Both a :class:`ValueError` and a :class:`TypeError`: code written for channels_redis and
    Channels 2-4, whose layers raise ``TypeError`` for a bad name, catches it too.
    """


class ForeignProcessChannel(InvalidChannelName):
    """A receive named a process-specific channel (``prefix!...``) of another process.

    Only the layer instance whose :meth:`~channels_core.layers.BaseChannelLayer.new_channel`
    made the name receives its messages; a receive anywhere else would wait forever, so it
    raises at once. ``channel`` is the name and ``prefix`` the process prefix that owns it.
    """

    def __init__(self, channel: str, prefix: str) -> None:
        super().__init__(
            f"Channel {channel!r} is process-specific and belongs to the process prefix "
            f"{prefix!r}, which another process (another layer instance) made, so a receive "
            "here would wait forever: receive it in the process whose new_channel() made it, "
            "or receive here on a name from this layer's new_channel() or on a normal channel "
            "(no '!')."
        )
        self.channel = channel
        self.prefix = prefix


class MessageError(ChannelsError, TypeError):
    """A message is not a dict of msgpack-safe values."""


class MessageTooLarge(ChannelsError, ValueError):
    """A message, once serialized, is bigger than the layer accepts."""


class ChannelFull(ChannelsError):
    """A channel holds as many messages as its capacity allows; the send was refused."""


class LayerClosed(ChannelsError):
    """The layer was closed; it accepts no more sends or receives."""


class LayerUnavailable(ChannelsError):
    """The layer's transport (a server, a file) cannot be reached right now."""


class EventRefused(ChannelsError):
    """The host could not hand an event on: the layer refused it (full, or unreachable).

    Raised by :meth:`channels_core.host.Host.emit` (and ``request``) in worker mode, and by
    anything that puts events on a layer for another process. ``channel`` is the event's
    channel and ``reason`` the layer's own error. Each protocol maps it to its own answer:
    HTTP 503, WebSocket close 1013, a dropped and counted datagram, SMTP 451.
    """

    def __init__(self, channel: str, reason: BaseException | str) -> None:
        super().__init__(str(reason))
        self.channel = channel
        self.reason = reason


class NoRoute(ChannelsError, LookupError):
    """No consumer is routed for an event the host was asked to run in-process."""


class ReplyTimeout(ChannelsError, TimeoutError):
    """:meth:`channels_core.host.Host.request` waited its whole timeout for a reply."""
