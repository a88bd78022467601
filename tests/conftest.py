"""Django settings for the in-process tests of every distribution, configured once.

Tests that need a whole project (servers, workers, the demos) run it in subprocesses with its
own settings module.

Tests change ``CHANNEL_LAYERS``/``CHANNELS`` with Django's ``override_settings``; the
``setting_changed`` receiver the ``channels_core`` app connects forgets the cached settings,
plugins and layers on the way in and out.
"""

from __future__ import annotations

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="channels-core-tests",
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
