"""ChannelsLiveServerTestCase: a real ``channels serve`` process per test class, talked to
over HTTP and WebSocket from unittest-style tests; and its configuration errors."""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.request
from pathlib import Path

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="channels-live-server-tests",
        INSTALLED_APPS=["channels_core"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
        CHANNEL_LAYERS={"default": {"BACKEND": "memory"}},
    )
    django.setup()

from channels_core.exceptions import ImproperlyConfigured
from channels_core.testing.processes import free_port, start_process
from channels_http.testing import (
    DATABASES_ENV,
    ChannelsLiveServerTestCase,
    serve_live_server,
)
from channels_ws.testing import WebSocketClient

SITE = Path(__file__).resolve().parent / "site_project"

pytestmark = pytest.mark.slow


class SiteLiveServerTests(ChannelsLiveServerTestCase):
    serve_settings = "site_project.settings"
    serve_pythonpath = str(SITE)
    databases = set()

    def test_urls_name_the_running_server(self):
        assert re.search(r"^http://127\.0\.0\.1:\d+$", self.live_server_url)
        assert self.live_server_ws_url == "ws" + self.live_server_url[4:]

    def test_a_routed_consumer_and_a_django_view_answer(self):
        with urllib.request.urlopen(f"{self.live_server_url}/hello/?a=1", timeout=10) as reply:
            assert reply.read() == b"hello a=1|"
        with urllib.request.urlopen(f"{self.live_server_url}/page/", timeout=10) as reply:
            assert reply.read() == b"<h1>site page</h1>"

    def test_a_websocket_echoes(self):
        port = int(self.live_server_ws_url.rpartition(":")[2])
        with WebSocketClient.connect(port, "/ws/echo/") as client:
            client.send_text("live")
            assert client.receive() == "live"


class NoSettings(ChannelsLiveServerTestCase):
    databases = set()


class InMemoryDatabase(ChannelsLiveServerTestCase):
    databases = {"default"}


def test_without_a_settings_module_the_error_says_how_to_name_one(monkeypatch):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    try:
        with pytest.raises(ImproperlyConfigured, match="set the class attribute serve_settings"):
            NoSettings.setUpClass()
    finally:
        NoSettings.doClassCleanups()


def test_an_in_memory_test_database_is_refused(monkeypatch):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "any_project.settings")
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "any_project.settings"
    try:
        with pytest.raises(
            ImproperlyConfigured, match=r"in-memory SQLite database.*\['TEST'\]\['NAME'\]"
        ):
            InMemoryDatabase.setUpClass()
    finally:
        InMemoryDatabase.doClassCleanups()


def test_the_live_server_process_uses_the_test_databases(tmp_path):
    test_database = str(tmp_path / "test_db.sqlite3")
    port = free_port()
    with start_process(
        [
            sys.executable,
            "-c",
            f"import sys; from channels_http.testing import {serve_live_server.__name__}; "
            "sys.exit(serve_live_server(sys.argv[1:]))",
            "serve",
            "--endpoint",
            f"tcp:{port}:interface=127.0.0.1",
        ],
        env={
            "DJANGO_SETTINGS_MODULE": "site_project.settings",
            "PYTHONPATH": str(SITE),
            DATABASES_ENV: json.dumps({"default": test_database}),
        },
    ) as server:
        server.wait_for_line(rf"http listening on tcp:{port}:")
        url = f"http://127.0.0.1:{port}/database-name/"
        with urllib.request.urlopen(url, timeout=10) as reply:
            assert reply.read().decode() == test_database
        assert server.terminate() == 0
