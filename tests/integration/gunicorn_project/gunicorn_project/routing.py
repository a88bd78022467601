"""The test projects' routing, each behind a ``/pid/`` route."""

from http_project.routing import channel_routing as http_project_routing
from ws_project.routing import channel_routing as ws_project_routing

from channels_core import route

from .consumers import pid

ws_routing = [route("http.request", pid, path=r"^/pid/$"), *ws_project_routing]
http_routing = [route("http.request", pid, path=r"^/pid/$"), *http_project_routing]
