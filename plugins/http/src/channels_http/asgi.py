"""``http.request`` messages served by ASGI 3 applications: Django's views, or any app.

:func:`run_asgi` turns an ``http.request`` message into an ASGI ``scope``, ``receive`` and
``send``, runs the app, and sends its response as ``http.response`` replies through
``reply(content)``. The protocol server uses it in-process for requests no route takes (with
Django's ASGI handler) and for ``channels serve my_project.asgi:application``; in worker mode
route ``http.request`` to :func:`django_views` to get the same behaviour.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from functools import cache, partial
from typing import Any

from channels_core import local

logger = logging.getLogger(__name__)

Reply = Callable[[dict], Awaitable[None] | None]
AsgiApp = Callable[..., Awaitable[None]]

_ASGI = {"version": "3.0", "spec_version": "2.3"}


@cache
def django_application() -> AsgiApp:
    """Django's ASGI handler, built once (Django must be set up)."""
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


@cache
def static_django_application() -> AsgiApp:
    """Django's ASGI handler behind staticfiles' handler: ``STATIC_URL`` is served from the
    staticfiles finders, as ``runserver`` serves it in development."""
    from django.apps import apps
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from channels_core.exceptions import ImproperlyConfigured

    if not apps.is_installed("django.contrib.staticfiles"):
        raise ImproperlyConfigured(
            "The http option static is on, but django.contrib.staticfiles is not in "
            "INSTALLED_APPS; add it, or turn the option off."
        )
    return ASGIStaticFilesHandler(django_application())


def asgi_scope(content: dict) -> dict:
    """The ASGI HTTP connection scope of an ``http.request`` message."""
    return {
        "type": "http",
        "asgi": _ASGI,
        "http_version": content["http_version"],
        "method": content["method"],
        "scheme": content["scheme"],
        "path": content["path"],
        "query_string": content["query_string"],
        "root_path": content["root_path"],
        "headers": content["headers"],
        "client": content["client"],
        "server": content["server"],
    }


async def run_asgi(
    app: AsgiApp,
    content: dict,
    reply: Reply,
    disconnected: asyncio.Future | None = None,
) -> None:
    """Serve the ``http.request`` *content* with the ASGI *app*, replying through *reply*.

    *reply* takes each ``http.response`` reply (a plain call or a coroutine function);
    *disconnected* is a future done when the client goes away (``receive()`` then returns
    ``http.disconnect``; without it, ``receive()`` after the body waits until cancelled).
    Raises RuntimeError when the app returns without finishing its response.
    """
    body_taken = False
    pending_start: dict | None = None
    finished = False

    async def receive() -> dict:
        nonlocal body_taken
        if not body_taken:
            body_taken = True
            return {"type": "http.request", "body": content["body"], "more_body": False}
        await asyncio.shield(disconnected if disconnected is not None else asyncio.Future())
        return {"type": "http.disconnect"}

    async def send(event: dict) -> None:
        nonlocal pending_start, finished
        kind = event["type"]
        if kind == "http.response.start":
            pending_start = event
            return
        if kind != "http.response.body" or finished:
            return
        more = event.get("more_body", False)
        response = {"content": event.get("body", b""), "more_content": more}
        if pending_start is not None:
            response["status"] = pending_start["status"]
            response["headers"] = pending_start.get("headers", [])
            pending_start = None
        finished = not more
        result = reply(response)
        # A coroutine function's reply is awaited; a plain call's result (local.deliver's
        # bool) is not.
        if inspect.isawaitable(result):
            await result

    await app(asgi_scope(content), receive, send)
    if not finished:
        raise RuntimeError(
            f"The ASGI application {app!r} returned without finishing its response to "
            f"{content['method']} {content['path']}."
        )


async def _deliver_when_writable(reply_channel: str, content: dict) -> None:
    """Hand a response part to the connection, once its client reads (backpressure)."""
    if local.paused:
        await local.writable(reply_channel)
    local.deliver(reply_channel, content)


class AsgiHttpAdapter:
    """``channels serve module:app``: each ``http.request`` event served by the ASGI app.

    Called as the host's emit target; the response goes to the request's reply channel, and
    the app's ``receive()`` gives ``http.disconnect`` once that channel is closed.
    """

    def __init__(self, host: Any, app: AsgiApp) -> None:
        self.host = host
        self.app = app

    async def __call__(self, channel: str, content: dict, *, reraise: bool = False) -> bool:
        """Run the app for the request *content*; always True (the app takes every path)."""
        reply_channel = content["reply_channel"]
        try:
            await run_asgi(
                self.app,
                content,
                partial(_deliver_when_writable, reply_channel),
                self.host.reply_closed(reply_channel),
            )
        except Exception:
            if reraise:
                raise
            logger.exception(
                "The ASGI application raised on %s %s.", content["method"], content["path"]
            )
        return True


async def django_views(message: Any) -> None:
    """A consumer serving ``http.request`` with Django's views (for worker mode).

    ``route("http.request", django_views)`` last in the routing gives a worker the behaviour
    the protocol server has in-process: every request no other route takes goes to Django.
    """
    await run_asgi(django_application(), message.content, message.reply_channel.send)
