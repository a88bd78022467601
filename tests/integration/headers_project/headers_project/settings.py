"""Settings of the hostile-application project: consumers, a Django view and an ASGI app
that give the server response headers and bodies it must refuse."""

SECRET_KEY = "headers-test-project"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels_core"]
ROOT_URLCONF = "headers_project.hostile"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "headers_project.hostile.routes"},
}
CHANNELS = {
    "PROTOCOLS": ["http", "http2", "websocket"],
    "OPTIONS": {"http": {"access_log": True}},
}
