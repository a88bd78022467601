"""Channel sessions: a Django session per reply channel, kept across a connection's messages.

``@channel_session`` (or ``channel_session = True`` on a class consumer) gives the consumer
``message.channel_session``, a Django :class:`~django.contrib.sessions.backends.base.SessionBase`
whose key is derived from the message's reply channel, so every message of one connection
sees the same session. It is saved after the consumer when modified.

The engine is ``CHANNELS["SESSION_ENGINE"]``, else Django's ``SESSION_ENGINE``. It must keep
sessions on the server (database, cache, file...): the signed-cookie engine cannot.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from importlib import import_module
from types import ModuleType
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
