"""channels_http.testing.HttpClient: the site project's consumers and views, driven
in-process through ChannelsApplication (no sockets), from unittest-style test cases."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import django
from django.conf import settings
from django.test import SimpleTestCase, override_settings

SITE = Path(__file__).resolve().parents[1] / "integration" / "site_project"
if str(SITE) not in sys.path:
    sys.path.insert(0, str(SITE))

if not settings.configured:
    settings.configure(
        SECRET_KEY="channels-http-testing-client",
        INSTALLED_APPS=["channels_core"],
        USE_TZ=True,
        CHANNEL_LAYERS={"default": {"BACKEND": "memory"}},
    )
    django.setup()

from channels_http.application import ChannelsApplication  # noqa: E402 - needs settings
from channels_http.testing import HttpClient  # noqa: E402

SITE_SETTINGS = {
    "CHANNEL_LAYERS": {
        "default": {"BACKEND": "memory", "ROUTING": "site_project.routing.channel_routing"}
    },
    "ROOT_URLCONF": "site_project.urls",
    "ALLOWED_HOSTS": ["testserver"],
}


async def plain_app(scope, receive, send):
    """A bare ASGI application, streaming its answer in two parts."""
    request = await receive()
    await send({"type": "http.response.start", "status": 202, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"got ", "more_body": True})
    await send({"type": "http.response.body", "body": request["body"]})


@override_settings(**SITE_SETTINGS)
class HttpClientTests(SimpleTestCase):
    def test_a_routed_consumer_answers_with_the_query_string(self):
        response = HttpClient().get("/hello/?name=ada")
        assert response.status == 200
        assert response.content == b"hello name=ada|"
        assert response.header("Content-Type") == "text/plain"

    def test_post_sends_the_body(self):
        response = HttpClient().post("/hello/", "payload", content_type="text/plain")
        assert response.text == "hello |payload"

    def test_an_unrouted_path_goes_to_django_views(self):
        client = HttpClient()
        page = client.get("/page/")
        assert (page.status, page.content) == (200, b"<h1>site page</h1>")
        assert client.get("/nowhere/").status == 404

    def test_a_consumer_that_raises_gives_500(self):
        with self.assertLogs("channels_http.application", "ERROR") as logs:
            response = HttpClient().get("/crash/")
        assert response.status == 500
        assert "Serving GET /crash/ raised" in logs.output[0]

    def test_a_consumer_that_never_answers_fails_the_test_after_the_timeout(self):
        with self.assertRaisesMessage(AssertionError, "No complete response to GET /silent/"):
            HttpClient(timeout=0.2).get("/silent/")

    def test_any_asgi_application_can_be_driven(self):
        response = HttpClient(application=plain_app).post("/x/", b"body")
        assert (response.status, response.content) == (202, b"got body")
        assert response.header("x-app") == "1"

    def test_a_relative_path_is_refused_with_a_clear_error(self):
        with self.assertRaisesMessage(ValueError, "give an absolute path such as"):
            HttpClient().get("hello/")


async def lifespan(application, *events):
    """Feed lifespan *events* to *application*; what it sent back."""
    incoming = [{"type": event} for event in events]
    sent = []

    async def receive():
        return incoming.pop(0)

    async def send(event):
        sent.append(event)

    await application({"type": "lifespan"}, receive, send)
    return sent


class ChannelsApplicationTests(SimpleTestCase):
    @override_settings(**SITE_SETTINGS)
    def test_lifespan_starts_and_stops_the_application(self):
        application = ChannelsApplication()
        sent = asyncio.run(lifespan(application, "lifespan.startup", "lifespan.shutdown"))
        assert sent == [
            {"type": "lifespan.startup.complete"},
            {"type": "lifespan.shutdown.complete"},
        ]
        assert application.host is None  # shut down

    def test_an_unknown_alias_fails_the_startup_with_a_clear_error(self):
        sent = asyncio.run(lifespan(ChannelsApplication("nope"), "lifespan.startup"))
        assert sent[0]["type"] == "lifespan.startup.failed"
        assert "CHANNEL_LAYERS has no alias 'nope'" in sent[0]["message"]

    def test_an_unknown_scope_type_is_a_clear_error(self):
        with self.assertRaisesMessage(ValueError, "ASGI scope of type 'udp'"):
            asyncio.run(ChannelsApplication()({"type": "udp"}, None, None))
