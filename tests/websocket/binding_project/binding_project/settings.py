"""Settings of the data binding test project.

``BINDING_DATA`` names a directory for the SQLite database, the session files and the IPC
layer, so the server and the processes that save notes share all three.
"""

import os

DATA = os.environ.get("BINDING_DATA", "/nonexistent")
SECRET_KEY = "binding-test-project"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "channels_core",
    "notes",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(DATA, "db.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.file"
SESSION_FILE_PATH = DATA
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "ipc",
        "ROUTING": "binding_project.routing.channel_routing",
        "CONFIG": {"path": os.path.join(DATA, "ipc")},
    },
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"]}
