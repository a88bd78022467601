"""Django settings for the in-process tests of every distribution, configured once.

Tests that need a whole project (servers, workers, the demos) run it in subprocesses with its
own settings module.

Tests change ``CHANNEL_LAYERS``/``CHANNELS`` with Django's ``override_settings``; the
``setting_changed`` receiver the ``channels_core`` app connects forgets the cached settings,
plugins and layers on the way in and out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import django
import pytest
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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files (``openssl``): the
    tests of TLS endpoints share one. Skips the test when openssl is missing."""
    from channels_core.testing.tls import self_signed_certificate

    if shutil.which("openssl") is None:
        pytest.skip("needs openssl (Debian: apt-get install openssl)")
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def migrated_database():
    """The tables of the installed apps (users, sessions), in the in-memory database of the
    tests' thread, for the tests whose consumers read users: a ``ChannelTestCase`` shares that
    connection with its consumers' threads. Per module, since closing the connection loses
    the database."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@pytest.fixture
def browsers():
    """Start headless Chromium sessions on demand, each with its own profile (its own user),
    their console and network events kept: ``browsers()``, or
    ``browsers("--ignore-certificate-errors")``. Quit at the end of the test."""
    from channels_core.testing.browser import headless_chromium

    started = []

    def start(*arguments: str, logs: bool = True):
        driver = headless_chromium(arguments, logs=logs)
        started.append(driver)
        return driver

    try:
        yield start
    finally:
        for driver in started:
            driver.quit()
