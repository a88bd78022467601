"""Settings of the --processes test project: an IPC layer in PROC_DATA shared by the children."""

import os

SECRET_KEY = "processes-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["channels_core"]
DATABASES = {}
ROOT_URLCONF = "proc_project.urls"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": os.environ.get("PROC_BACKEND", "ipc"),
        "ROUTING": "proc_project.routing.channel_routing",
        "CONFIG": {"path": os.environ["PROC_DATA"]}
        if os.environ.get("PROC_BACKEND") == "ipc"
        else {},
    },
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"]}
