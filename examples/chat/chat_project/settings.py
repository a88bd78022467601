"""Settings of the chat demo: Django views and WebSocket rooms from one ``channels serve``.

Environment variables (all optional):

- ``CHAT_DATABASE``: the SQLite file (default ``db.sqlite3`` beside ``manage.py``).
- ``CHAT_ALLOWED_HOSTS``: comma-separated hosts the site answers to, and that a browser's
  WebSocket ``Origin`` may name (default ``127.0.0.1,localhost``).
- ``CHAT_SECRET_KEY``: the secret key; the default is fine on your own machine only.
- ``CHAT_DEBUG``: ``1`` for Django's debug pages.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("CHAT_SECRET_KEY", "chat-demo-not-secret")
DEBUG = os.environ.get("CHAT_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("CHAT_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels_core",
    "chat",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "chat.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DATABASE", str(BASE_DIR / "db.sqlite3")),
        # Views and consumers write from several threads; wait for the lock, do not fail.
        "OPTIONS": {"timeout": 20},
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LOGIN_URL = "sign_in"
STATIC_URL = "static/"

# Channels: HTTP (Django's views) and WebSocket (the rooms) on one port, consumers run
# in the server process, groups on the embedded memory layer.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "memory",
        "ROUTING": "chat.routing.channel_routing",
        # Each room's group keeps its last 200 messages, for pages that reconnect.
        "CONFIG": {"history": {"chat-room-*": {"size": 200}}},
    },
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"], "MODE": "inprocess"}
