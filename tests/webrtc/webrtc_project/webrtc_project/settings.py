"""Settings of the WebRTC test project (served by ``channels serve`` in the tests).

Loopback only: no STUN or TURN server, host candidates on 127.0.0.1. The layer is the memory
one, or a Redis layer when ``WEBRTC_REDIS_URL`` names a server (for worker mode, where
``channels worker`` processes run the consumers), with the channel capacity
``WEBRTC_CAPACITY`` (100 by default). ``WEBRTC_WRITE_BUFFER`` (JSON) is
``CHANNELS["WRITE_BUFFER"]``.
"""

import json
import os

redis_url = os.environ.get("WEBRTC_REDIS_URL")

SECRET_KEY = "webrtc-test-project"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["channels_core"]
DATABASES = {}
USE_TZ = True
routing = "webrtc_project.routing.channel_routing"
CHANNEL_LAYERS = {
    "default": (
        {
            "BACKEND": "redis",
            "ROUTING": routing,
            "CONFIG": {
                "hosts": [redis_url],
                "capacity": int(os.environ.get("WEBRTC_CAPACITY", "100")),
            },
        }
        if redis_url
        else {"BACKEND": "memory", "ROUTING": routing}
    ),
}
CHANNELS = {
    "PROTOCOLS": ["http", "websocket", "webrtc"],
    "WRITE_BUFFER": json.loads(os.environ.get("WEBRTC_WRITE_BUFFER", "{}")),
    "OPTIONS": {
        "webrtc": {
            "ice_servers": [],
            "host_addresses": ["127.0.0.1"],
            "max_message_size": 65536,
            "connect_timeout": 5.0,
        }
    },
}
