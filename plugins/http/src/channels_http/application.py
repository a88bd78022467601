"""Channels consumers served by another ASGI server (uvicorn, Daphne, Hypercorn).

::

    # my_project/asgi.py
    import django
    django.setup()
    from channels_http.application import ChannelsApplication
    application = ChannelsApplication()        # the routing of CHANNEL_LAYERS["default"]

    $ uvicorn my_project.asgi:application

An ASGI ``http`` connection becomes one ``http.request`` message (the body read whole) for
the routed consumer, or Django's views when no route takes it, as under ``channels serve``;
the ``http.response`` replies become ``http.response.start``/``http.response.body``. An ASGI
``websocket`` connection becomes ``websocket.connect``/``receive``/``disconnect`` messages
(:func:`channels_ws.asgi.serve_websocket`). Replies reach the connection directly in-process;
group sends and sends from other processes reach it through the layer. With
``CHANNELS["MODE"] = "worker"`` the messages go on the layer for ``channels worker``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels_core import local
from channels_core.layers import DEFAULT_CHANNEL_LAYER, get_channel_layer
from channels_core.names import check_channel_name, random_suffix

from .asgi import django_application, run_asgi

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


class ChannelsApplication:
    """An ASGI 3 application running the routing of ``CHANNEL_LAYERS[alias]``.

    Handles the ``http``, ``websocket`` (with ``channels-ws`` installed) and ``lifespan``
    scopes. Built before Django is set up, it reads the settings on its first call.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        self.alias = alias
        self.layer: Any = None
        self.dispatcher: Any = None
        self._receivers: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()

    def _start(self) -> None:
        """Build the layer and, in-process, the dispatcher (once)."""
        if self.layer is not None:
            return
        from channels_core.settings import get_settings

        layer = get_channel_layer(self.alias)
        if get_settings().mode == "inprocess":
            from channels_core.dispatch import Dispatcher
            from channels_core.routing import Router

            self.dispatcher = Dispatcher(Router.from_alias(self.alias), self.alias)
        self.layer = layer

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Serve one ASGI connection."""
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind not in ("http", "websocket"):
            raise ValueError(
                f"ChannelsApplication was given an ASGI scope of type {kind!r}; it serves "
                "'http', 'websocket' and 'lifespan' scopes."
            )
        self._start()
        if kind == "http":
            await self._http(scope, receive, send)
        else:
            from channels_ws.asgi import serve_websocket

            await serve_websocket(self, scope, receive, send)

    # What the connections use -----------------------------------------------------------

    def new_reply_channel(self, prefix: str) -> str:
        """A fresh process-specific reply channel; layer messages for it reach local handlers."""
        process_prefix = self.layer.process_prefix(prefix)
        if process_prefix not in self._receivers:
            self._receivers[process_prefix] = asyncio.get_running_loop().create_task(
                local.deliver_from_layer(self.layer, process_prefix)
            )
        return check_channel_name(process_prefix + random_suffix())

    async def emit(self, channel: str, content: dict) -> bool:
        """Run the routed consumer (its exception propagates); False when no route matched.

        In worker mode the message goes on the layer instead.
        """
        if self.dispatcher is not None:
            return await self.dispatcher.dispatch(channel, content, reraise=True)
        await self.layer.send(channel, content)
        return True

    async def close(self) -> None:
        """Stop taking replies from the layer and shut the consumers' thread pool down."""
        for task in (*self._receivers.values(), *self._tasks):
            task.cancel()
        await asyncio.gather(*self._receivers.values(), *self._tasks, return_exceptions=True)
        self._receivers.clear()
        if self.dispatcher is not None:
            self.dispatcher.close()
            self.dispatcher = None
        self.layer = None

    # Scopes -----------------------------------------------------------------------------

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                try:
                    self._start()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive: Callable, send: Callable) -> None:
        body = []
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return
            body.append(event.get("body", b""))
            if not event.get("more_body", False):
                break
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue = asyncio.Queue()
        reply_channel = self.new_reply_channel(HTTP_RESPONSE)
        local.bind(reply_channel, replies.put_nowait, loop)
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
        consumer = loop.create_task(self._consume(content, replies))
        self._tasks.add(consumer)
        consumer.add_done_callback(self._tasks.discard)
        watcher = loop.create_task(_watch_disconnect(receive, replies))
        try:
            await _respond(replies, send)
        finally:
            local.unbind(reply_channel)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        # The response is complete, but the consumer may still be cleaning up (Django closes
        # the response and the request body after sending). Returning now would let the ASGI
        # server, or a loop that is shutting down, cancel that clean-up half-way.
        await asyncio.wait({consumer}, timeout=CLEANUP_TIMEOUT)

    async def _consume(self, content: dict, replies: asyncio.Queue) -> None:
        """The routed consumer, else Django's views; a failure becomes a 500."""
        try:
            if not await self.emit(HTTP_REQUEST, content):
                await run_asgi(django_application(), content, replies.put_nowait)
        except Exception:
            logger.exception(
                "Serving %s %s raised; answering 500.", content["method"], content["path"]
            )
            replies.put_nowait(_FAILED)


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
