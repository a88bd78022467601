"""channels-ws: WebSocket for Channels, and the WebsocketConsumer family.

The consumer classes import from here (loaded on first use, so the plugin registry can
import ``channels_ws.plugin`` without Django settings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels_core.exports import lazy_getattr

__version__ = "0.1.0"

_EXPORTS = {
    "WebsocketConsumer": ".consumers",
    "AsyncWebsocketConsumer": ".consumers",
    "JsonWebsocketConsumer": ".consumers",
    "AsyncJsonWebsocketConsumer": ".consumers",
    "WebsocketDemultiplexer": ".consumers",
    "AsyncWebsocketDemultiplexer": ".consumers",
    "WebsocketMultiplexer": ".consumers",
    "WebsocketBinding": ".binding",
    "WebsocketBindingWithMembers": ".binding",
    "http_session": "channels_core.sessions",
    "channel_session_user": ".auth",
    "channel_session_user_from_http": ".auth",
    "channel_session_user_from_token": ".auth",
    "enforce_ordering": ".ordering",
}

__all__ = [  # noqa: RUF022 - grouped as in _EXPORTS
    "__version__",
    "WebsocketConsumer",
    "AsyncWebsocketConsumer",
    "JsonWebsocketConsumer",
    "AsyncJsonWebsocketConsumer",
    "WebsocketDemultiplexer",
    "AsyncWebsocketDemultiplexer",
    "WebsocketMultiplexer",
    "WebsocketBinding",
    "WebsocketBindingWithMembers",
    "http_session",
    "channel_session_user",
    "channel_session_user_from_http",
    "channel_session_user_from_token",
    "enforce_ordering",
]

if TYPE_CHECKING:
    from channels_core.sessions import http_session

    from .auth import (
        channel_session_user,
        channel_session_user_from_http,
        channel_session_user_from_token,
    )
    from .binding import WebsocketBinding, WebsocketBindingWithMembers
    from .consumers import (
        AsyncJsonWebsocketConsumer,
        AsyncWebsocketConsumer,
        AsyncWebsocketDemultiplexer,
        JsonWebsocketConsumer,
        WebsocketConsumer,
        WebsocketDemultiplexer,
        WebsocketMultiplexer,
    )
    from .ordering import enforce_ordering


__getattr__ = lazy_getattr(__name__, _EXPORTS)
