"""Settings of the UDP test project (see the package docstring)."""

import os

SECRET_KEY = "udp-tests"
INSTALLED_APPS = ["channels_core"]
USE_TZ = True
ROUTING = "udp_project.routing.channel_routing"
if os.environ.get("UDP_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "redis",
            "ROUTING": ROUTING,
            "CONFIG": {
                "hosts": [os.environ["UDP_REDIS_URL"]],
                "prefix": os.environ.get("UDP_PREFIX", "udp:"),
            },
        },
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "memory", "ROUTING": ROUTING}}
CHANNELS = {"PROTOCOLS": ["udp"], "OPTIONS": {"udp": {"max_datagram_size": 1024}}}
