"""Channels: event-driven, multi-protocol Django, as a microkernel of pluggy hooks.

The public names import from here; each is loaded on first use, so importing the package
loads no plugin and touches no setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .exports import lazy_getattr
from .plugins import hookimpl

__version__ = "0.1.0"

_EXPORTS = {
    "Channel": ".channel",
    "new_channel": ".channel",
    "Group": ".group",
    "Message": ".message",
    "route": ".routing",
    "route_class": ".routing",
    "include": ".routing",
    "BaseConsumer": ".consumers",
    "AsyncConsumer": ".consumers",
    "channel_session": ".sessions",
    "http_session": ".sessions",
    "http_session_user": ".sessions",
    "channel_and_http_session": ".sessions",
    "get_channel_layer": ".layers",
    "BaseChannelLayer": ".layers",
    "ChannelFull": ".exceptions",
    "ImproperlyConfigured": ".exceptions",
    "InvalidChannelName": ".exceptions",
    "MessageError": ".exceptions",
    "MessageTooLarge": ".exceptions",
}

__all__ = [  # noqa: RUF022 - grouped as in _EXPORTS
    "__version__",
    "hookimpl",
    "Channel",
    "new_channel",
    "Group",
    "Message",
    "route",
    "route_class",
    "include",
    "BaseConsumer",
    "AsyncConsumer",
    "channel_session",
    "http_session",
    "http_session_user",
    "channel_and_http_session",
    "get_channel_layer",
    "BaseChannelLayer",
    "ChannelFull",
    "ImproperlyConfigured",
    "InvalidChannelName",
    "MessageError",
    "MessageTooLarge",
]

if TYPE_CHECKING:
    from .channel import Channel, new_channel
    from .consumers import AsyncConsumer, BaseConsumer
    from .exceptions import (
        ChannelFull,
        ImproperlyConfigured,
        InvalidChannelName,
        MessageError,
        MessageTooLarge,
    )
    from .group import Group
    from .layers import BaseChannelLayer, get_channel_layer
    from .message import Message
    from .routing import include, route, route_class
    from .sessions import (
        channel_and_http_session,
        channel_session,
        http_session,
        http_session_user,
    )


__getattr__ = lazy_getattr(__name__, _EXPORTS)
