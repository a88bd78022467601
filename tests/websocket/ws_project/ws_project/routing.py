"""Routes of the WebSocket test project."""

from channels_core import route_class

from .consumers import (
    AsyncEcho,
    AsyncJsonEcho,
    Chat,
    Demux,
    Echo,
    Flood,
    Gatekeeper,
    JsonEcho,
    PresenceRoom,
    RecoverRoom,
    SyncPresenceRoom,
    TokenFromSetting,
    TokenWhoami,
    Watched,
    Whoami,
)

channel_routing = [
    route_class(Echo, path=r"^/echo/$"),
    route_class(Watched, path=r"^/watched/$"),
    route_class(AsyncEcho, path=r"^/async/$"),
    route_class(Flood, path=r"^/flood/$"),
    route_class(JsonEcho, path=r"^/json/$"),
    route_class(AsyncJsonEcho, path=r"^/async-json/$"),
    route_class(Chat, path=r"^/chat/(?P<room>\w+)/$"),
    route_class(Gatekeeper, path=r"^/(?P<kind>refuse|silent|crash-connect|subprotocol)/$"),
    route_class(Whoami, path=r"^/whoami/$"),
    route_class(TokenWhoami, path=r"^/token/$"),
    route_class(TokenFromSetting, path=r"^/token-setting/$"),
    route_class(Demux, path=r"^/demux/$"),
    route_class(PresenceRoom, path=r"^/presence/(?P<room>\w+)/$"),
    route_class(SyncPresenceRoom, path=r"^/sync-presence/(?P<room>\w+)/$"),
    route_class(RecoverRoom, path=r"^/recover/(?P<room>\w+)/$"),
]
