"""Settings of the worker-mode test project (see the package docstring)."""

import json
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
capacity = int(os.environ.get("WM_CAPACITY", "2000"))
if os.environ.get("WM_BACKEND") == "ipc":
    # An IPC layer in the test's directory, for the processes of this machine.
    layer = {"BACKEND": "ipc", "CONFIG": {"path": os.path.join(SESSION_FILE_PATH, "ipc")}}
else:
    layer = {
        "BACKEND": "redis",
        "CONFIG": {
            "hosts": [os.environ.get("WM_REDIS_URL", "redis://127.0.0.1:1/0")],
            "prefix": os.environ.get("WM_PREFIX", "wm:"),
        },
    }
layer["CONFIG"]["capacity"] = capacity
CHANNEL_LAYERS = {"default": {**layer, "ROUTING": "wm_project.routing.channel_routing"}}
CHANNELS = {"PROTOCOLS": ["http", "http2", "websocket"]}
if "WM_MODE" in os.environ:
    CHANNELS["MODE"] = os.environ["WM_MODE"]
if "WM_OUTAGE" in os.environ:
    CHANNELS["LAYER_OUTAGE"] = json.loads(os.environ["WM_OUTAGE"])
