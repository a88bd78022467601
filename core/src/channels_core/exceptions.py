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


class InvalidChannelName(ChannelsError, ValueError):
    """A channel or group name is too long or has characters outside ``[a-zA-Z0-9._-]``."""


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
