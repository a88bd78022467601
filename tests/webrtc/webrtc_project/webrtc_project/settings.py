"""Settings of the WebRTC test project (served by ``channels serve`` in the tests).

Loopback only: no STUN or TURN server, host candidates on 127.0.0.1.
"""

SECRET_KEY = "webrtc-test-project"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["channels_core"]
DATABASES = {}
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "webrtc_project.routing.channel_routing"},
}
CHANNELS = {
    "PROTOCOLS": ["http", "websocket", "webrtc"],
    "OPTIONS": {
        "webrtc": {
            "ice_servers": [],
            "host_addresses": ["127.0.0.1"],
            "max_message_size": 65536,
            "connect_timeout": 5.0,
        }
    },
}
