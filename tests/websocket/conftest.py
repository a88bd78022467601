"""Django settings for the in-process WebSocket tests: configured once, unless a parent (or
a sibling directory's) conftest did first. Server tests run ``ws_project`` in subprocesses."""

from __future__ import annotations

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="channels-ws-tests",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "channels_core",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        USE_TZ=True,
        CHANNEL_LAYERS={"default": {"BACKEND": "memory"}},
    )
    django.setup()
