"""Settings of the worker-mode test project (see the package docstring)."""

import os

SECRET_KEY = "worker-mode-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django.contrib.sessions", "channels_core"]
DATABASES = {}
ROOT_URLCONF = "wm_project.urls"
USE_TZ = True
# strict_ordering keeps each connection's next order in its channel session: every worker
# must see the same store.
SESSION_ENGINE = "django.contrib.sessions.backends.file"
SESSION_FILE_PATH = os.environ.get("WM_DATA", "/nonexistent")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "redis",
        "ROUTING": "wm_project.routing.channel_routing",
        "CONFIG": {
            "hosts": [os.environ.get("WM_REDIS_URL", "redis://127.0.0.1:1/0")],
            "prefix": os.environ.get("WM_PREFIX", "wm:"),
            "capacity": int(os.environ.get("WM_CAPACITY", "2000")),
        },
    },
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"]}
