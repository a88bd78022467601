"""Settings of the WebSocket test project (served by ``channels serve`` in the tests).

``WS_PROJECT_DATA`` names a directory for the SQLite database and the session files, so the
test process and the server share users and sessions.
"""

import os

DATA = os.environ.get("WS_PROJECT_DATA", "/nonexistent")
SECRET_KEY = "ws-test-project"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "allowed.example"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "channels_core",
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(DATA, "db.sqlite3")}
}
SESSION_ENGINE = "django.contrib.sessions.backends.file"
SESSION_FILE_PATH = DATA
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "memory",
        "ROUTING": "ws_project.routing.channel_routing",
        "CONFIG": {"history": {"history-*": {"size": 5}}},
    },
}
CHANNELS = {
    "PROTOCOLS": ["http", "websocket"],
    "OPTIONS": {
        "websocket": {
            "connect_timeout": 1.0,
            "max_message_size": 4096,
            "max_frame_size": 2048,
            "ping_interval": 1.0,
            "ping_timeout": 2.0,
        }
    },
}
TOKENS = {"secret-token": "tokenuser"}
CHANNELS_WS_TOKEN_AUTHENTICATOR = "ws_project.consumers.authenticate_token"
