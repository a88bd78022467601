"""Settings of the WebRTC benchmark app: loopback only, the in-process memory layer."""

SECRET_KEY = "bench-webrtc"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["channels_core"]
DATABASES = {}
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "bench_webrtc.routing.channel_routing"},
}
CHANNELS = {
    "PROTOCOLS": ["http", "webrtc"],
    "OPTIONS": {"webrtc": {"ice_servers": [], "host_addresses": ["127.0.0.1"]}},
}
