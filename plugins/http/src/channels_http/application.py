"""Channels consumers served by another ASGI server: the ``http`` scope.

:func:`serve_http` is the ``serve_asgi`` of the ``http`` protocol, which
:class:`~channels_core.application.ChannelsApplication` (importable from here too) calls for
each ASGI ``http`` connection::

    # my_project/asgi.py
    import django
    django.setup()
    from channels_http.application import ChannelsApplication
    application = ChannelsApplication()        # the routing of CHANNEL_LAYERS["default"]

    $ uvicorn my_project.asgi:application
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from channels_core.application import ChannelsApplication

from .asgi import django_application, run_asgi

if TYPE_CHECKING:
    from channels_core.host import Host

__all__ = ["ChannelsApplication", "serve_http"]

logger = logging.getLogger(__name__)

# How long the application waits, after a complete response, for its consumer to finish.
CLEANUP_TIMEOUT = 10.0

HTTP_REQUEST = "http.request"
HTTP_RESPONSE = "http.response"
# What the consumer task puts in a request's reply queue when it failed, or the client left.
_FAILED = object()
_GONE = object()
SERVER_ERROR = {
    "status": 500,
    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
    "content": b"500 Internal Server Error",
}


async def serve_http(host: Host, scope: dict, receive: Callable, send: Callable) -> None:
    """Serve one ASGI ``http`` connection with the routed consumers of *host*.

    The ``serve_asgi`` of the ``http`` protocol: the request (its body read whole) becomes one
    ``http.request`` event for the routed consumer, or Django's views when no route takes it;
    the ``http.response`` replies become ``http.response.start``/``http.response.body``.
    """
    body = []
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            return
        body.append(event.get("body", b""))
        if not event.get("more_body", False):
            break
    replies: asyncio.Queue = asyncio.Queue()
    reply_channel = host.open_reply(HTTP_RESPONSE, replies.put_nowait)
    content = {
        "reply_channel": reply_channel,
        "http_version": scope.get("http_version", "1.1"),
        "method": scope["method"],
        "scheme": scope.get("scheme", "http"),
        "path": scope["path"],
        "query_string": scope.get("query_string", b""),
        "root_path": scope.get("root_path", ""),
        "headers": [[bytes(name).lower(), bytes(value)] for name, value in scope["headers"]],
        "body": b"".join(body),
        "body_channel": None,
        "client": list(scope["client"]) if scope.get("client") else None,
        "server": list(scope["server"]) if scope.get("server") else None,
    }
    loop = asyncio.get_running_loop()
    consumed = loop.create_future()
    host.spawn(_consume(host, content, replies, consumed))
    watcher = loop.create_task(_watch_disconnect(receive, replies))
    try:
        with host.hold():
            await _respond(replies, send)
    finally:
        host.close_reply(reply_channel)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    # The response is complete, but the consumer may still be cleaning up (Django closes
    # the response and the request body after sending). Returning now would let the ASGI
    # server, or a loop that is shutting down, cancel that clean-up half-way.
    await asyncio.wait({consumed}, timeout=CLEANUP_TIMEOUT)


async def _consume(
    host: Host, content: dict, replies: asyncio.Queue, consumed: asyncio.Future
) -> None:
    """The routed consumer, else Django's views; a failure (or a refusal) becomes a 500."""
    try:
        if not await host.emit(HTTP_REQUEST, content, reraise=True):
            await run_asgi(django_application(), content, replies.put_nowait)
    except Exception:
        logger.exception("Serving %s %s raised; answering 500.", content["method"], content["path"])
        replies.put_nowait(_FAILED)
    finally:
        consumed.set_result(None)


async def _watch_disconnect(receive: Callable, replies: asyncio.Queue) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    replies.put_nowait(_GONE)


async def _respond(replies: asyncio.Queue, send: Callable) -> None:
    """Turn ``http.response`` replies into ASGI events until the response ends."""
    started = False
    while True:
        reply = await replies.get()
        if reply is _GONE:
            return
        if reply is not _FAILED and not started and not isinstance(reply.get("status"), int):
            logger.error(
                "The first http.response reply has status=%r; it must carry an int status "
                "such as 200. Answering 500.",
                reply.get("status"),
            )
            reply = _FAILED
        if reply is _FAILED:
            # A response already started can only be cut short.
            reply = {"content": b""} if started else SERVER_ERROR
        if not started:
            started = True
            headers = [(_bytes(name), _bytes(value)) for name, value in reply.get("headers", ())]
            await send(
                {"type": "http.response.start", "status": reply["status"], "headers": headers}
            )
        more = bool(reply.get("more_content", False))
        await send(
            {"type": "http.response.body", "body": reply.get("content", b""), "more_body": more}
        )
        if not more:
            return


def _bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)
