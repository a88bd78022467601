"""Settings of the rooms project when ``channels serve`` runs it (the in-process tests use
the test suite's settings and only its routing).

``ROOMS_PROJECT_DATA`` names a directory for the SQLite database and the session files, so
the test process and the server share users and sessions.
"""

import os

DATA = os.environ.get("ROOMS_PROJECT_DATA", "/nonexistent")
SECRET_KEY = "rooms-test-project"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
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
    "default": {"BACKEND": "memory", "ROUTING": "rooms_project.routing.channel_routing"},
}
