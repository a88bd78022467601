"""Settings of the benchmark project served by ``channels serve``."""

SECRET_KEY = "http-ws-benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels_core"]
ROOT_URLCONF = "bench_ours.urls"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "bench_ours.routing.channel_routing"},
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"], "MODE": "inprocess"}
