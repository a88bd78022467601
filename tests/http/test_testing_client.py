"""channels_http.testing.HttpClient: the site project's consumers and views, driven
in-process through ChannelsApplication (no sockets), from unittest-style test cases; and
Channels 1's HttpClient API (send_and_consume, receive, login, cookies) in a ChannelTestCase."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import django
import pytest
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

from django.contrib.auth import get_user_model  # noqa: E402 - needs settings

from channels_core import http_session, http_session_user, route  # noqa: E402
from channels_core.testing import ChannelTestCase  # noqa: E402
from channels_http.application import ChannelsApplication  # noqa: E402
from channels_http.plugin import REQUEST_KEYS  # noqa: E402
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


def _answer(message, answer, *headers):
    message.reply_channel.send(
        {
            "status": 200,
            "headers": [[b"content-type", b"application/json"], *headers],
            "content": json.dumps(answer).encode(),
        }
    )


@http_session_user
def whoami(message):
    headers = dict(message["headers"])
    _answer(
        message,
        {
            "user": message.user.get_username(),
            "method": message["method"],
            "query": message["query_string"].decode(),
            "body": message["body"].decode(),
            "type": headers.get(b"content-type", b"").decode(),
            "length": headers.get(b"content-length", b"").decode(),
        },
    )


@http_session
def session_user_id(message):
    # No database: the ASGI path runs consumers in threads without the test's connection.
    _answer(message, {"id": message.http_session and message.http_session.get("_auth_user_id")})


def cookies(message, action):
    if action == "set":
        _answer(message, {}, [b"set-cookie", b"flavour=mint; Path=/"])
    elif action == "forget":
        _answer(message, {}, [b"set-cookie", b'flavour=""; Max-Age=0; Path=/'])
    else:
        _answer(message, {"cookie": dict(message["headers"]).get(b"cookie", b"").decode()})


ONE_X = {
    "CHANNEL_LAYERS": {
        "default": {
            "BACKEND": "memory",
            "ROUTING": [
                route("http.request", whoami, path=r"^/whoami/$"),
                route("http.request", session_user_id, path=r"^/session/$"),
                route("http.request", cookies, path=r"^/cookies/(?P<action>\w+)/$"),
            ],
        }
    },
    "ALLOWED_HOSTS": ["testserver"],
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
}


@pytest.mark.usefixtures("migrated_database")
@override_settings(**ONE_X)
class OneXHttpClientTests(ChannelTestCase):
    """Channels 1's HttpClient: requests as messages on the test layer, login, cookies."""

    def setUp(self):
        super().setUp()
        self.ada = get_user_model().objects.create_user("ada", password="secret")

    def test_a_logged_in_request_as_the_server_would_send_it(self):
        client = HttpClient()
        assert client.login(username="ada", password="secret")
        message = client.send_and_consume(
            "http.request",
            {"method": "post", "body": b"x=1", "headers": [[b"content-type", b"text/plain"]]},
            path="/whoami/?a=b",
        )
        assert sorted(message.content) == sorted(REQUEST_KEYS)
        assert message["reply_channel"].startswith("http.response.")
        response = client.receive()
        assert response["status"] == 200
        assert json.loads(response["content"]) == {
            "user": "ada",
            "method": "POST",
            "query": "a=b",
            "body": "x=1",
            "type": "text/plain",
            "length": "3",
        }
        assert client.receive() is None

    def test_text_is_the_body_and_anonymous_is_nobody(self):
        client = HttpClient()
        client.send_and_consume("http.request", text={"a": 1}, path="/whoami/")
        answer = json.loads(client.receive()["content"])
        assert (answer["user"], answer["body"], answer["length"]) == ("", '{"a": 1}', "8")

    def test_no_route_fails_the_test(self):
        with pytest.raises(AssertionError, match="No route"):
            HttpClient().send_and_consume("http.request", path="/nowhere/")

    def test_get_and_post_carry_the_login_and_the_cookies_responses_set(self):
        client = HttpClient()
        client.force_login(self.ada)
        assert client.get("/session/").json() == {"id": str(self.ada.pk)}
        client.get("/cookies/set/")
        assert client.get_cookies()["flavour"] == "mint"
        cookie = client.post("/cookies/echo/", b"").json()["cookie"]
        assert cookie == f"flavour=mint; sessionid={client.session.session_key}"
        client.get("/cookies/forget/")
        assert "flavour" not in client.get_cookies()


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
