"""Settings of the HTTP/2 test project (served by ``channels serve`` in the tests)."""

SECRET_KEY = "h2-test-project"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels_core"]
ROOT_URLCONF = "h2_project.urls"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "h2_project.routing.channel_routing"},
}
CHANNELS = {
    "PROTOCOLS": ["http", "websocket", "http2"],
    "OPTIONS": {
        "http": {"max_body_size": 1_000_000, "http_timeout": 5.0},
        "http2": {"max_concurrent_streams": 20, "max_resets": 50},
    },
}
