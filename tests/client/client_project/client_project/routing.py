"""The WebSocket routes the browser client talks to."""

from channels_core import route_class

from .consumers import Demux, Echo, HistoryRoom, PresenceRoom, Relay

channel_routing = [
    route_class(Echo, path=r"^/ws/echo/$"),
    route_class(Demux, path=r"^/ws/demux/$"),
    route_class(PresenceRoom, path=r"^/ws/presence/(?P<room>\w+)/$"),
    route_class(Relay, path=r"^/ws/relay/$"),
    route_class(HistoryRoom, path=r"^/ws/history/(?P<kind>room|small)/(?P<room>\w+)/$"),
]
