"""Testing helpers for projects: an in-process HTTP client and a live-server test case.

::

    from channels_http.testing import ChannelsLiveServerTestCase, HttpClient

    class PageTests(SimpleTestCase):
        def test_hello(self):
            response = HttpClient().get("/hello/?name=ada")
            self.assertEqual(response.status, 200)
            self.assertEqual(response.content, b"hello ada")

:class:`HttpClient` drives the routed consumers in this process, without sockets: its
``get``, ``post`` and ``request`` run
:class:`~channels_http.application.ChannelsApplication` (or any ASGI application) on a fresh
event loop per request, so the request goes through the same routing, Django fallback and
reply channels as under ``channels serve``. It is also Channels 1's ``HttpClient``: in a
``ChannelTestCase``, ``send_and_consume("http.request", path=...)`` puts the request message
on the test layer and runs its consumer, and ``receive()`` is the reply; ``login()`` and
``force_login()`` log a user in, and the cookies go with every request.
:class:`ChannelsLiveServerTestCase` starts a real ``channels serve`` process on a free port
for browser or socket tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.test import TransactionTestCase
from django.utils.functional import classproperty

from channels_core.exceptions import ImproperlyConfigured
from channels_core.layers import DEFAULT_CHANNEL_LAYER
from channels_core.testing import SessionClient, split_path
from channels_core.testing.clients import CLIENT_ADDRESS, SERVER_ADDRESS, Headers
from channels_core.testing.processes import LOOPBACK, RunningProcess, free_port, start_process

from .application import HTTP_REQUEST, HTTP_RESPONSE, ChannelsApplication
from .asgi import asgi_scope

DEFAULT_TIMEOUT = 10.0
# The test databases the live server must use instead of the settings' names, as JSON.
DATABASES_ENV = "CHANNELS_LIVE_SERVER_DATABASES"


def _bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


@dataclass
class Response:
    """What :class:`HttpClient` got back: status, headers (byte pairs, in order), content."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of the header *name* (case-insensitive), or None."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    @property
    def text(self) -> str:
        """The content decoded as UTF-8."""
        return self.content.decode("utf-8")

    def json(self) -> Any:
        """The content parsed as JSON."""
        return json.loads(self.content)


class HttpClient(SessionClient):
    """Sends requests to a project's consumers in this process and returns their responses.

    :param application: the ASGI application to call; by default a fresh
        :class:`~channels_http.application.ChannelsApplication` for *alias* per request.
    :param alias: the ``CHANNEL_LAYERS`` alias whose routing serves the requests.
    :param headers: headers sent with every request (``host: testserver`` is added unless
        given).
    :param timeout: how long a response may take, in seconds; longer fails the test.

    ``get``, ``post`` and ``request`` each run their own event loop, so call them from
    synchronous tests (unittest's ``TestCase`` or Django's), not from inside a running event
    loop; the ``Set-Cookie`` headers of their responses are kept and sent back, as a browser
    does. In a ``ChannelTestCase``, Channels 1's ``send_and_consume("http.request",
    content=None, text=None, path="/")`` runs the routed consumer of an ``http.request``
    message (``content`` may set ``method``, ``body`` and ``headers``; *text* is sent as the
    body, JSON-encoded unless a str) and ``receive()`` is its reply. ``login()``,
    ``force_login()``, ``session``, ``set_cookie()`` and ``set_header()`` apply to both.
    """

    reply_prefix = HTTP_RESPONSE

    def __init__(
        self,
        application: Any = None,
        alias: str = DEFAULT_CHANNEL_LAYER,
        headers: Headers = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(alias, headers)
        self.application = application
        self.timeout = timeout

    def get(self, path: str, headers: Headers = ()) -> Response:
        """``GET path`` (the path may carry a query string)."""
        return self.request("GET", path, headers=headers)

    def post(
        self,
        path: str,
        body: bytes | str = b"",
        content_type: str = "application/octet-stream",
        headers: Headers = (),
    ) -> Response:
        """``POST path`` with *body* (a str is sent as UTF-8)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        return self.request(
            "POST", path, body=data, headers=[("content-type", content_type), *headers]
        )

    def request(self, method: str, path: str, body: bytes = b"", headers: Headers = ()) -> Response:
        """Send one request and return its :class:`Response`.

        Raises AssertionError when no complete response came within the timeout, and
        whatever the application raised.
        """
        content = self.request_message(method, path, body, headers)
        scope = {**asgi_scope(content), "raw_path": split_path(path)[1].encode("latin-1")}
        response = asyncio.run(self._call(scope, body))
        for name, value in response.headers:
            if name.lower() == b"set-cookie":
                self.cookies.load(value.decode("latin-1"))
                # A cookie the response expires (Django's delete_cookie) is no longer sent.
                for key, morsel in list(self.cookies.items()):
                    if str(morsel["max-age"]) == "0":
                        del self.cookies[key]
        return response

    def request_message(
        self, method: str, path: str, body: bytes = b"", headers: Headers = ()
    ) -> dict:
        """The ``http.request`` message (without ``reply_channel``) of a request: this
        client's headers and cookies, then *headers* (which replace those of the same name),
        and ``content-length`` when there is a body."""
        decoded, _, query_string = split_path(path)
        given = [[_bytes(name).lower(), _bytes(value)] for name, value in headers]
        names = {name for name, _ in given}
        all_headers = [pair for pair in self.headers if pair[0] not in names] + given
        if body and b"content-length" not in names:
            all_headers.append([b"content-length", str(len(body)).encode()])
        return {
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": decoded,
            "query_string": query_string,
            "root_path": "",
            "headers": all_headers,
            "body": body,
            "body_channel": None,
            "client": list(CLIENT_ADDRESS),
            "server": list(SERVER_ADDRESS),
        }

    def content_for(
        self, channel: str, content: dict | None = None, text: Any = None, path: str = "/"
    ) -> dict:
        """For ``http.request``, the message ``channels serve`` would send (see
        :meth:`request_message`); for another channel, as :class:`SessionClient`."""
        if channel != HTTP_REQUEST:
            return super().content_for(channel, content, text, path)
        given = dict(content or {})
        if text is not None:
            given["body"] = (text if isinstance(text, str) else json.dumps(text)).encode("utf-8")
        message = self.request_message(
            given.pop("method", "GET"),
            path,
            given.pop("body", b""),
            given.pop("headers", ()),
        )
        message.update(given)
        message.setdefault("reply_channel", self.reply_channel)
        return message

    async def _call(self, scope: dict, body: bytes) -> Response:
        application = self.application or ChannelsApplication(self.alias)
        try:
            return await _exchange(application, scope, body, self.timeout)
        finally:
            if self.application is None:
                await application.close()


async def _exchange(application: Any, scope: dict, body: bytes, limit: float) -> Response:
    """Run *application* for one request; its response."""
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    response = Response(status=0)
    body_given = False

    async def receive() -> dict:
        nonlocal body_given
        if not body_given:
            body_given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.shield(finished)
        return {"type": "http.disconnect"}

    async def send(event: dict) -> None:
        if event["type"] == "http.response.start":
            response.status = event["status"]
            response.headers = [(_bytes(k), _bytes(v)) for k, v in event.get("headers", ())]
        elif event["type"] == "http.response.body":
            response.content += event.get("body", b"")
            if not event.get("more_body", False) and not finished.done():
                finished.set_result(None)

    task = loop.create_task(application(scope, receive, send))
    done, _ = await asyncio.wait({task, finished}, timeout=limit, return_when="FIRST_COMPLETED")
    if task in done and task.exception() is not None:
        raise task.exception()
    if finished not in done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise AssertionError(
            f"No complete response to {scope['method']} {scope['path']} within {limit} s "
            f"(status so far: {response.status or 'none'})."
        )
    try:
        await asyncio.wait_for(task, limit)
    except TimeoutError:
        task.cancel()
    return response


def serve_live_server(argv: Sequence[str]) -> int:
    """The live server's process: point the databases at the test databases, then run the
    ``channels`` command line with *argv*."""
    overrides = json.loads(os.environ.get(DATABASES_ENV) or "{}")
    if overrides:
        from django.conf import settings

        for alias, name in overrides.items():
            settings.DATABASES[alias]["NAME"] = name
    from channels_core.cli import main

    return main(list(argv))


class ChannelsLiveServerTestCase(TransactionTestCase):
    """A :class:`~django.test.TransactionTestCase` with a real ``channels serve`` running.

    The server starts once per class, in a subprocess (the Twisted reactor can be installed
    once per process), on a free port of 127.0.0.1, with the settings module of this process
    (``DJANGO_SETTINGS_MODULE``) pointed at the test databases, or with ``serve_settings``.
    ``live_server_url`` is ``http://127.0.0.1:PORT`` and ``live_server_ws_url``
    ``ws://127.0.0.1:PORT``. Test databases must be files (SQLite's in-memory databases
    cannot be shared with another process): set ``DATABASES[alias]["TEST"]["NAME"]``.
    """

    host = LOOPBACK
    serve_settings: str | None = None
    serve_pythonpath: str | None = None
    serve_args: Sequence[str] = ()
    startup_timeout = 30.0
    server: RunningProcess | None = None
    server_port = 0

    @classproperty
    def live_server_url(cls) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{cls.host}:{cls.server_port}"

    @classproperty
    def live_server_ws_url(cls) -> str:
        """``ws://host:port`` of the running server."""
        return f"ws://{cls.host}:{cls.server_port}"

    @classmethod
    def setUpClass(cls) -> None:
        """Start the server and wait until it listens."""
        super().setUpClass()
        settings_module = cls.serve_settings or os.environ.get("DJANGO_SETTINGS_MODULE")
        if not settings_module:
            raise ImproperlyConfigured(
                f"{cls.__name__} starts channels serve in a subprocess, which needs a settings "
                "module, but DJANGO_SETTINGS_MODULE is not set; set it, or set the class "
                "attribute serve_settings = 'my_project.settings'."
            )
        env = {"DJANGO_SETTINGS_MODULE": settings_module}
        if cls.serve_pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, (str(cls.serve_pythonpath), os.environ.get("PYTHONPATH")))
            )
        if cls.serve_settings is None:
            env[DATABASES_ENV] = json.dumps(cls._test_database_names())
        cls.server_port = free_port()
        cls.server = start_process(
            [
                sys.executable,
                "-c",
                "import sys; from channels_http.testing import serve_live_server; "
                "sys.exit(serve_live_server(sys.argv[1:]))",
                "serve",
                "--endpoint",
                f"tcp:{cls.server_port}:interface={cls.host}",
                *cls.serve_args,
            ],
            env=env,
        )
        cls.addClassCleanup(cls._stop_server)
        cls.server.wait_for_line(
            rf"http listening on tcp:{cls.server_port}:", timeout=cls.startup_timeout
        )

    @classmethod
    def _stop_server(cls) -> None:
        server, cls.server = cls.server, None
        if server is not None:
            with server:
                server.terminate()

    @classmethod
    def _test_database_names(cls) -> dict[str, str]:
        from django.db import connections

        names = {}
        for alias in cls._databases_names(include_mirrors=False):
            connection = connections[alias]
            if connection.vendor == "sqlite" and connection.is_in_memory_db():
                raise ImproperlyConfigured(
                    f"{cls.__name__}: the test database {alias!r} is an in-memory SQLite "
                    "database, which the server process cannot share; set "
                    f"DATABASES[{alias!r}]['TEST']['NAME'] to a file name."
                )
            names[alias] = connection.settings_dict["NAME"]
        return names
