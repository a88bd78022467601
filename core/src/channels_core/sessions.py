"""Channel sessions: a Django session per reply channel, kept across a connection's messages;
and the HTTP session of a message's cookie.

``@channel_session`` (or ``channel_session = True`` on a class consumer) gives the consumer
``message.channel_session``, a Django :class:`~django.contrib.sessions.backends.base.SessionBase`
whose key is derived from the message's reply channel, so every message of one connection
sees the same session. It is saved after the consumer when modified.

The engine is ``CHANNELS["SESSION_ENGINE"]``, else Django's ``SESSION_ENGINE``. It must keep
sessions on the server (database, cache, file...): the signed-cookie engine cannot.

For messages that carry the request's headers (``http.request``, ``websocket.connect``):

- :func:`http_session`: ``message.http_session``, the Django session named by the cookie
  (None without one).
- :func:`http_session_user`: that and ``message.user``, the session's user
  (``AnonymousUser`` without a session).
- :func:`channel_and_http_session`: both sessions on every message of a connection: on
  connect the cookie's session key is kept in the channel session, and later messages (which
  carry no cookie) get ``message.http_session`` back from it.

Each works on sync and ``async def`` consumers; the async form does its session and database
work in a thread.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from importlib import import_module
from types import ModuleType, SimpleNamespace
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.sessions.backends.base import CreateError, SessionBase

from .exceptions import ImproperlyConfigured
from .message import Message

SESSION_KEY_PREFIX = "chn"
_engines: dict[str, ModuleType] = {}


def session_engine() -> ModuleType:
    """The session engine module for channel sessions (imported once per engine path)."""
    from django.conf import settings as django_settings

    from .settings import get_settings

    path = get_settings().session_engine or django_settings.SESSION_ENGINE
    engine = _engines.get(path)
    if engine is None:
        if path == "django.contrib.sessions.backends.signed_cookies":
            raise ImproperlyConfigured(
                f"The channel session engine is {path!r}, which keeps sessions in the "
                "browser's cookie and cannot store channel sessions; set "
                "CHANNELS['SESSION_ENGINE'] to a server-side engine such as "
                "'django.contrib.sessions.backends.cache'."
            )
        try:
            engine = _engines[path] = import_module(path)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"The channel session engine {path!r} cannot be imported ({error}); set "
                "CHANNELS['SESSION_ENGINE'] or SESSION_ENGINE to a session engine module."
            ) from error
    return engine


def session_key_for(reply_channel: str) -> str:
    """The session key of *reply_channel*: ``chn`` and 29 hex digits of its SHA-1.

    Hashing keeps the key within the 32 characters every engine accepts and uses only the
    characters the file engine allows.
    """
    digest = hashlib.sha1(reply_channel.encode("utf-8"), usedforsecurity=False).hexdigest()
    return SESSION_KEY_PREFIX + digest[:29]


def _load(reply_channel: str) -> tuple[SessionBase, bool]:
    key = session_key_for(reply_channel)
    session = session_engine().SessionStore(session_key=key)
    # Loading a key the store does not hold resets the key to None (Django would then make a
    # random one); that tells whether it existed without a second round trip, and the key is
    # put back so the session stays tied to the reply channel.
    session.keys()
    existed = session.session_key is not None
    session._session_key = key
    return session, existed


def session_for_reply_channel(reply_channel: str) -> SessionBase:
    """The session of *reply_channel*, loaded from the channel session engine."""
    return _load(reply_channel)[0]


def _open(message: Message) -> tuple[SessionBase, bool]:
    if message.reply_channel is None:
        raise ValueError(
            f"The message on {message.channel.name!r} has no 'reply_channel', so it has no "
            "channel session; use @channel_session only on consumers of channels whose "
            f"messages carry a reply channel (its keys are {sorted(message.content)})."
        )
    session, existed = _load(message.reply_channel.name)
    message.channel_session = session
    return session, existed


def _save(session: SessionBase, existed: bool) -> None:
    if not session.modified:
        return
    try:
        session.save(must_create=not existed)
    except CreateError:
        # Another consumer of the same connection created it meanwhile: update it instead.
        session.save()


def channel_session(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``func(message, **kwargs)`` a ``message.channel_session``, saved when modified.

    Works on sync and ``async def`` consumers; the async form loads and saves the session
    in a thread (``sync_to_async``) so a database engine does not block the loop. A message
    that already has a channel session (nested decorators) keeps it.
    """
    if iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_inner(message: Message, *args: Any, **kwargs: Any) -> Any:
            if "channel_session" in message.__dict__:
                return await func(message, *args, **kwargs)
            session, existed = await sync_to_async(_open)(message)
            try:
                return await func(message, *args, **kwargs)
            finally:
                await sync_to_async(_save)(session, existed)

        return async_inner

    @functools.wraps(func)
    def inner(message: Message, *args: Any, **kwargs: Any) -> Any:
        if "channel_session" in message.__dict__:
            return func(message, *args, **kwargs)
        session, existed = _open(message)
        try:
            return func(message, *args, **kwargs)
        finally:
            _save(session, existed)

    return inner


def before_consumer(prepare: Callable[[Message], None]) -> Callable[[Callable], Callable]:
    """A consumer decorator that runs ``prepare(message)`` before the consumer: in the
    consumer's thread for a sync consumer, in a thread (``sync_to_async``) for an async one."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_inner(message: Message, *args: Any, **kwargs: Any) -> Any:
                await sync_to_async(prepare)(message)
                return await func(message, *args, **kwargs)

            return async_inner

        @functools.wraps(func)
        def inner(message: Message, *args: Any, **kwargs: Any) -> Any:
            prepare(message)
            return func(message, *args, **kwargs)

        return inner

    return decorator


def message_header(message: Message, name: bytes) -> bytes | None:
    """The value of the header *name* (lower-case bytes) of the message, or None."""
    for key, value in message.get("headers") or ():
        if key == name:
            return value
    return None


def _http_session_for(key: str | None) -> SessionBase | None:
    """The Django session *key* names, or None for no key or one the store does not hold."""
    from django.conf import settings

    if not key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    # An unknown or expired key loads as an empty session; treat it as no session.
    return session if session.exists(key) else None


def load_http_session(message: Message) -> None:
    """Set ``message.http_session`` from the message's session cookie (once per message)."""
    from django.conf import settings
    from django.http.cookie import parse_cookie

    if "http_session" in message.__dict__:
        return
    cookie = message_header(message, b"cookie")
    cookies = parse_cookie(cookie.decode("latin-1")) if cookie else {}
    message.http_session = _http_session_for(cookies.get(settings.SESSION_COOKIE_NAME))


def session_user(session: SessionBase) -> Any:
    """The user *session* is logged in as (``AnonymousUser`` when none), as Django's
    ``request.user``."""
    from django.contrib.auth import get_user

    return get_user(SimpleNamespace(session=session))


def _load_http_session_user(message: Message) -> None:
    from django.contrib.auth.models import AnonymousUser

    load_http_session(message)
    session = message.http_session
    message.user = AnonymousUser() if session is None else session_user(session)


def _keep_http_session(message: Message) -> None:
    """Keep the cookie's session key in the channel session, or get the session back."""
    from django.conf import settings

    load_http_session(message)
    name = settings.SESSION_COOKIE_NAME
    kept = message.channel_session
    if message.http_session is not None:
        if kept.get(name) != message.http_session.session_key:
            kept[name] = message.http_session.session_key
    elif name in kept:
        message.http_session = _http_session_for(kept[name])


def http_session(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give the consumer ``message.http_session``: the Django session of the message's
    cookie, or None."""
    return before_consumer(load_http_session)(func)


def http_session_user(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give the consumer ``message.http_session`` and ``message.user``, its user
    (``AnonymousUser`` without a session), as Django's ``AuthenticationMiddleware`` does."""
    return before_consumer(_load_http_session_user)(func)


def channel_and_http_session(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give the consumer ``message.channel_session`` and ``message.http_session`` on every
    message of a connection: the cookie's session key (sent on connect) is kept in the channel
    session under ``SESSION_COOKIE_NAME``, and messages without a cookie get the session back
    from it."""
    return channel_session(before_consumer(_keep_http_session)(func))
