"""Who is on the other end: Django sessions and users for WebSocket consumers.

A WebSocket carries the browser's cookies only in its opening request, so the Channels 1
pattern is: on ``websocket.connect``, read the user from the HTTP session cookie (or from a
token) and store it in the channel session; on every later message, read it back from there.

- ``http_session`` (from :mod:`channels_core.sessions`, with ``http_session_user`` and
  ``channel_and_http_session``; ``channels_ws`` exports it too): ``message.http_session``,
  the Django session named by the cookie of the connect message (None without one).
- :func:`channel_session_user`: ``message.channel_session`` and ``message.user``, the user
  stored in the channel session (``AnonymousUser`` when none).
- :func:`channel_session_user_from_http`: for ``websocket.connect``: copies the logged-in user
  of the HTTP session into the channel session, then as :func:`channel_session_user`.
- :func:`channel_session_user_from_token`: for ``websocket.connect``: the token of
  ``?token=...`` or of ``Authorization: Bearer|Token ...`` goes to the authenticator named by
  the consumer's ``token_authenticator`` or the ``CHANNELS_WS_TOKEN_AUTHENTICATOR`` setting
  (a callable or its dotted path, ``authenticate(token) -> user or None``); a user it returns
  is stored in the channel session.

Each works on sync and ``async def`` consumers; the async form does its database work in a
thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from django.utils.module_loading import import_string

from channels_core.exceptions import ImproperlyConfigured
from channels_core.message import Message
from channels_core.sessions import (
    before_consumer,
    channel_session,
    load_http_session,
    message_header,
    session_user,
)

TOKEN_SETTING = "CHANNELS_WS_TOKEN_AUTHENTICATOR"
# What django.contrib.auth keeps in a session for a logged-in user.
_AUTH_KEYS = ("_auth_user_id", "_auth_user_backend", "_auth_user_hash")


def _load_user(message: Message) -> None:
    message.user = session_user(message.channel_session)


def _store_user(message: Message, source: Any) -> None:
    """Copy the auth keys of *source* (a session) into the channel session."""
    session = message.channel_session
    for key in _AUTH_KEYS:
        if key in source:
            session[key] = source[key]


def _user_from_http(message: Message) -> None:
    load_http_session(message)
    if message.http_session is not None:
        _store_user(message, message.http_session)
    _load_user(message)


def channel_session_user(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give the consumer ``message.channel_session`` and ``message.user``."""
    return channel_session(before_consumer(_load_user)(func))


def channel_session_user_from_http(func: Callable[..., Any]) -> Callable[..., Any]:
    """On connect: the HTTP session's user goes into the channel session and ``message.user``."""
    return channel_session(before_consumer(_user_from_http)(func))


def token_from_message(message: Message) -> str | None:
    """The token of ``?token=...`` in the query string, else of ``Authorization: Bearer|Token``."""
    query = message.get("query_string") or b""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    tokens = parse_qs(query).get("token")
    if tokens:
        return tokens[0]
    authorization = message_header(message, b"authorization")
    if authorization:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() in ("bearer", "token") and token.strip():
            return token.strip()
    return None


def resolve_authenticator(authenticator: Any = None) -> Callable[[str], Any]:
    """The token authenticator: *authenticator* (a callable or dotted path) or the setting."""
    from django.conf import settings

    where = "token_authenticator"
    if authenticator is None:
        authenticator = getattr(settings, TOKEN_SETTING, None)
        where = TOKEN_SETTING
    if isinstance(authenticator, str):
        try:
            authenticator = import_string(authenticator)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"{where} is {authenticator!r}, which cannot be imported ({error}); name a "
                "function taking the token and returning a user or None."
            ) from error
    if not callable(authenticator):
        raise ImproperlyConfigured(
            f"{where} is {authenticator!r}, not a callable; set it to a function (or its "
            "dotted path) taking the token and returning a user or None."
        )
    return authenticator


def _user_from_token(message: Message, authenticator: Any) -> None:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    token = token_from_message(message)
    user = resolve_authenticator(authenticator)(token) if token else None
    if user is not None:
        session = message.channel_session
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = getattr(
            user, "backend", "django.contrib.auth.backends.ModelBackend"
        )
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    _load_user(message)


def channel_session_user_from_token(
    func: Callable[..., Any] | None = None, *, authenticator: Any = None
) -> Callable[..., Any]:
    """On connect: the user of the message's token goes into the channel session.

    Use bare (the ``CHANNELS_WS_TOKEN_AUTHENTICATOR`` setting names the authenticator) or as
    ``@channel_session_user_from_token(authenticator=...)``.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        return channel_session(
            before_consumer(functools.partial(_user_from_token, authenticator=authenticator))(func)
        )

    return decorator if func is None else decorator(func)


__all__ = [
    "channel_session_user",
    "channel_session_user_from_http",
    "channel_session_user_from_token",
]
