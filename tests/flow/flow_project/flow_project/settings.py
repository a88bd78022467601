"""Settings of the write-flow-control test project (served by ``channels serve``).

``FLOW_WRITE_BUFFER`` (JSON) is ``CHANNELS["WRITE_BUFFER"]``, so each test picks its bounds.
"""

import json
import os

SECRET_KEY = "flow-test-project"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["channels_core"]
DATABASES = {}
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "flow_project.routing.channel_routing"}
}
CHANNELS = {
    "PROTOCOLS": os.environ.get("FLOW_PROTOCOLS", "http,websocket").split(","),
    "WRITE_BUFFER": json.loads(os.environ.get("FLOW_WRITE_BUFFER", "{}")),
    "OPTIONS": {
        "websocket": {
            "ping_interval": float(os.environ.get("FLOW_PING_INTERVAL", "20")),
            "ping_timeout": float(os.environ.get("FLOW_PING_TIMEOUT", "30")),
            "max_message_size": 1 << 20,
            "max_frame_size": 1 << 20,
            "compression": False,
        }
    },
}
