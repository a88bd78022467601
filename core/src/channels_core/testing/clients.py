"""Channels 1's test clients: :class:`Client` (a reply channel) and :class:`SessionClient`
(headers, cookies and the Django session, ``login()``), used inside a channel test case.

``channels_ws.testing.WSClient`` and ``channels_http.testing.HttpClient`` are the WebSocket
and HTTP forms of :class:`SessionClient`.
"""

from __future__ import annotations

import copy
import json as json_module
from collections.abc import Iterable
from importlib import import_module
from typing import Any
from urllib.parse import unquote

from ..exceptions import ImproperlyConfigured
from ..layers import DEFAULT_CHANNEL_LAYER, BaseChannelLayer
from ..message import Message
from . import cases
from .processes import LOOPBACK

# The peer and the server the test clients' messages name, as Django's test client does.
CLIENT_ADDRESS = [LOOPBACK, 50000]
SERVER_ADDRESS = ["testserver", 80]
Headers = Iterable[tuple[bytes | str, bytes | str]]


def split_path(path: str) -> tuple[str, str, bytes]:
    """``(path, raw path, query string)`` of *path* as a server puts them in a message: the
    path percent-decoded, the query string as bytes. Raises ValueError for a relative path."""
    if not path.startswith("/"):
        raise ValueError(
            f"The test client was given the path {path!r}; give an absolute path such as "
            "'/chat/lobby/?token=abc' (no scheme or host)."
        )
    raw_path, _, query_string = path.partition("?")
    return unquote(raw_path), raw_path, query_string.encode("latin-1")


def _bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


class Client:
    """A fake connection: a reply channel, and sends that carry it (Channels 1's ``Client``).

    Use it inside a :class:`ChannelTestCase` test: ``Client().send_and_consume(channel,
    content)`` puts the message on the test layer with ``reply_channel`` set and runs its
    consumer; ``client.receive()`` is then what the consumer sent back. The client belongs to
    the test running when it is first used.
    """

    #: The prefix of the reply channel's name.
    reply_prefix = "test"

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        self.alias = alias
        self._environment: cases.ChannelTestEnvironment | None = None
        self._reply_channel: str | None = None

    @property
    def environment(self) -> cases.ChannelTestEnvironment:
        """The running test's layers and loop; RuntimeError outside a test."""
        if self._environment is None:
            self._environment = cases.active_environment(type(self).__name__)
        return self._environment

    @property
    def channel_layer(self) -> BaseChannelLayer:
        """The test layer this client sends on."""
        return self.environment.layers[self.alias]

    @property
    def reply_channel(self) -> str:
        """The name of this client's reply channel (made on first use)."""
        if self._reply_channel is None:
            self._reply_channel = self.environment.run(
                self.channel_layer.new_channel(self.reply_prefix)
            )
        return self._reply_channel

    def send(self, channel: str, content: dict | None = None) -> None:
        """Send *content* to *channel*, with this client's ``reply_channel`` unless it has one."""
        content = dict(content or {})
        content.setdefault("reply_channel", self.reply_channel)
        self.environment.send(channel, content, self.alias)

    def consume(self, channel: str, fail_on_none: bool = True) -> Message | None:
        """Run the routed consumer on the next message of *channel*."""
        return self.environment.consume(channel, self.alias, fail_on_none)

    def send_and_consume(
        self, channel: str, content: dict | None = None, fail_on_none: bool = True
    ) -> Message | None:
        """:meth:`send` then :meth:`consume` on *channel*."""
        self.send(channel, content)
        return self.consume(channel, fail_on_none)

    def receive(self) -> dict | None:
        """The content of the next message on this client's reply channel, or None."""
        message = self.environment.get_next_message(self.reply_channel, self.alias)
        return None if message is None else message.content

    def get_next_message(self, channel: str, require: bool = False) -> Message | None:
        """The next message on *channel*, or None."""
        return self.environment.get_next_message(channel, self.alias, require)

    def join_group(self, group_name: str) -> None:
        """Add this client's reply channel to the group *group_name*."""
        self.environment.run(self.channel_layer.group_add(group_name, self.reply_channel))


class SessionClient(Client):
    """A :class:`Client` with a browser's side: headers, cookies and a Django session.

    ``login(**credentials)`` and ``force_login(user)`` log a user in as Django's test client
    does, into the session its cookie names; :meth:`send` puts ``path``, ``query_string`` and
    the ``headers`` (``host``, the cookies) in each message, and ``text`` as JSON unless it is
    a str; :meth:`receive` decodes JSON text. ``channels_ws.testing.WSClient`` and
    ``channels_http.testing.HttpClient`` are its protocol forms.

    :param headers: headers sent with every message (``host: testserver`` unless given).
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER, headers: Headers = ()) -> None:
        from http.cookies import SimpleCookie

        super().__init__(alias)
        #: The cookies sent with each message (a :class:`http.cookies.SimpleCookie`).
        self.cookies = SimpleCookie()
        self._headers: dict[bytes, bytes] = {}
        self._session = None
        for name, value in headers:
            self.set_header(name, value)
        self._headers.setdefault(b"host", b"testserver")

    # Headers, cookies and the session ------------------------------------------------------

    def set_header(self, name: bytes | str, value: bytes | str) -> None:
        """Send the header *name* with every message (replacing an earlier value)."""
        name = _bytes(name).lower()
        if name == b"cookie":
            raise ValueError("Set cookies with set_cookie(name, value), not as a header.")
        self._headers[name] = _bytes(value)

    def set_cookie(self, name: str, value: str) -> None:
        """Send the cookie *name* with every message."""
        self.cookies[name] = value

    def get_cookies(self) -> dict[str, str]:
        """The cookies sent, by name (the session's once logged in)."""
        return {name: morsel.value for name, morsel in self.cookies.items()}

    @property
    def headers(self) -> list[list[bytes]]:
        """The headers each message carries, as ``[name, value]`` byte pairs."""
        headers = [[name, value] for name, value in self._headers.items()]
        if self.cookies:
            cookie = "; ".join(
                sorted(f"{morsel.key}={morsel.coded_value}" for morsel in self.cookies.values())
            )
            headers.append([b"cookie", cookie.encode("latin-1")])
        return headers

    @property
    def session(self) -> Any:
        """The Django session of the session cookie; without one, a new saved session whose
        cookie is set. The same object is returned until its cookie changes, unless it is
        unmodified (then it is read again), so ``client.session["k"] = v`` then
        ``client.session.save()`` works."""
        from django.apps import apps
        from django.conf import settings

        if not apps.is_installed("django.contrib.sessions"):
            raise ImproperlyConfigured(
                "The test client's session needs 'django.contrib.sessions' in INSTALLED_APPS; "
                "add it to use client.session, login() or force_login()."
            )
        engine = import_module(settings.SESSION_ENGINE)
        cookie = self.cookies.get(settings.SESSION_COOKIE_NAME)
        key = cookie.value if cookie is not None and cookie.value else None
        session = self._session
        if session is None or session.session_key != key or not session.modified:
            session = engine.SessionStore(key)
            if key is None:
                session.save()
                self.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
            self._session = session
        return session

    def login(self, **credentials: Any) -> bool:
        """Log in the user that ``django.contrib.auth.authenticate(**credentials)`` finds;
        False when none, when it is inactive, or without ``django.contrib.sessions``."""
        from django.apps import apps
        from django.contrib.auth import authenticate

        user = authenticate(**credentials)
        if user is None or not user.is_active or not apps.is_installed("django.contrib.sessions"):
            return False
        self._login(user, user.backend)
        return True

    def force_login(self, user: Any, backend: str | None = None) -> None:
        """Log *user* in without credentials, with *backend* (by default the first of
        ``AUTHENTICATION_BACKENDS`` that can load users)."""
        from django.conf import settings
        from django.contrib.auth import load_backend

        if backend is None:
            backend = next(
                path
                for path in settings.AUTHENTICATION_BACKENDS
                if hasattr(load_backend(path), "get_user")
            )
        user.backend = backend
        self._login(user, backend)

    def _login(self, user: Any, backend: str) -> None:
        from django.conf import settings
        from django.contrib.auth import login
        from django.http import HttpRequest

        request = HttpRequest()
        request.session = self.session
        login(request, user, backend)
        request.session.save()
        self.cookies[settings.SESSION_COOKIE_NAME] = request.session.session_key

    # Messages ------------------------------------------------------------------------------

    def opening(self, channel: str) -> bool:
        """Whether a message on *channel* carries the request's ``query_string`` and
        ``headers`` (all do here; after a WebSocket's handshake, a server sends neither)."""
        return True

    def content_for(
        self, channel: str, content: dict | None = None, text: Any = None, path: str = "/"
    ) -> dict:
        """The message a send to *channel* puts on the layer: a copy of *content*, with
        ``reply_channel``, ``path`` and (see :meth:`opening`) ``query_string`` and
        ``headers`` unless it has them, and *text* (JSON-encoded unless a str) as ``text``."""
        message = copy.deepcopy(dict(content or {}))
        message.setdefault("reply_channel", self.reply_channel)
        decoded, _, query_string = split_path(path)
        message.setdefault("path", decoded)
        if self.opening(channel):
            message.setdefault("query_string", query_string)
            message.setdefault("headers", self.headers)
        if text is None:
            text = message.get("text")
        if text is not None:
            message["text"] = text if isinstance(text, str) else json_module.dumps(text)
        return message

    def send(
        self, channel: str, content: dict | None = None, text: Any = None, path: str = "/"
    ) -> None:
        """Send :meth:`content_for` *channel* to *channel*."""
        self.environment.send(channel, self.content_for(channel, content, text, path), self.alias)

    def send_and_consume(
        self,
        channel: str,
        content: dict | None = None,
        text: Any = None,
        path: str = "/",
        fail_on_none: bool = True,
    ) -> Message | None:
        """:meth:`send` then :meth:`consume` on *channel*; the consumed message."""
        self.send(channel, content, text, path)
        return self.consume(channel, fail_on_none)

    def receive(self, json: bool = True) -> Any:
        """The next reply, or None: its ``text`` (decoded from JSON when *json*), else the
        whole content (an accept, a close, bytes, an HTTP response)."""
        content = super().receive()
        if content is None:
            return None
        text = content.get("text")
        if text is None:
            return content
        return json_module.loads(text) if json and isinstance(text, str) else text
