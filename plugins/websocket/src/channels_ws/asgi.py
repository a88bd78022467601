"""WebSocket and ASGI 3, both ways.

* :class:`AsgiWebsocketBridge`: ``channels serve my_project.asgi:application`` hands each
  WebSocket connection to the ASGI application. The server's ``websocket.connect``,
  ``websocket.receive`` and ``websocket.disconnect`` events become the ASGI ``websocket``
  scope and its ``receive()`` events; the application's ``websocket.accept``, ``.send`` and
  ``.close`` become replies on the connection's reply channel.
* :func:`serve_websocket`: the other way, for an ASGI server (uvicorn, Daphne) running
  :class:`channels_core.application.ChannelsApplication`: an ASGI WebSocket connection
  becomes ``websocket.*`` messages for the routed consumers, and their replies ASGI events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from channels_core import local

from .frames import INTERNAL_ERROR, NORMAL_CLOSURE, positioned_text

if TYPE_CHECKING:
    from channels_core.host import Host

logger = logging.getLogger(__name__)

CONNECT = "websocket.connect"
RECEIVE = "websocket.receive"
DISCONNECT = "websocket.disconnect"
REPLY_PREFIX = "websocket.send"
# The close code ASGI reports when the client left without one (RFC 6455's "no status").
NO_STATUS = 1005
ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}

AsgiApp = Callable[..., Awaitable[None]]


def websocket_scope(content: dict) -> dict:
    """The ASGI ``websocket`` connection scope of a ``websocket.connect`` message."""
    return {
        "type": "websocket",
        "asgi": ASGI_VERSION,
        "http_version": "1.1",
        "scheme": "ws",
        "path": content["path"],
        "raw_path": None,
        "query_string": content.get("query_string", b""),
        "root_path": "",
        "headers": content.get("headers", []),
        "client": content.get("client"),
        "server": content.get("server"),
        "subprotocols": list(content.get("subprotocols", ())),
        "state": {},
    }


def reply_from_event(event: dict, accepted: bool) -> dict:
    """The reply-channel message for an ASGI event the application sent.

    Raises ValueError for an event type a WebSocket application may not send.
    """
    kind = event.get("type")
    if kind == "websocket.accept":
        return {
            "accept": True,
            "subprotocol": event.get("subprotocol"),
            "headers": list(event.get("headers", ())),
        }
    if kind == "websocket.send":
        return {"text": event.get("text"), "bytes": event.get("bytes")}
    if kind == "websocket.close":
        return {"close": event.get("code") or NORMAL_CLOSURE} if accepted else {"accept": False}
    raise ValueError(
        f"the ASGI application sent {event!r} on a WebSocket connection; it may send "
        "websocket.accept, websocket.send and websocket.close"
    )


def _ending(accepted: bool, code: int) -> dict:
    """The reply that ends a connection: close with *code* once open, refuse before."""
    return {"close": code} if accepted else {"accept": False}


class AsgiWebsocketBridge:
    """Serves the server's ``websocket.*`` events with an ASGI application, one task per
    connection. Its :meth:`dispatch` is the host's emit target for those channels."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app
        self.inboxes: dict[str, asyncio.Queue] = {}
        self.tasks: set[asyncio.Task] = set()

    async def dispatch(self, channel: str, content: dict, *, reraise: bool = False) -> bool:
        """Hand an event to the application of its connection; always True (all routed)."""
        reply_channel = content["reply_channel"]
        if channel == CONNECT:
            inbox = self.inboxes[reply_channel] = asyncio.Queue()
            inbox.put_nowait({"type": CONNECT})
            task = asyncio.get_running_loop().create_task(
                self._run(websocket_scope(content), inbox, reply_channel)
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return True
        inbox = self.inboxes.get(reply_channel)
        if inbox is None:
            return True  # the application already returned: nobody listens
        if channel == RECEIVE:
            inbox.put_nowait(
                {"type": RECEIVE, "text": content.get("text"), "bytes": content.get("bytes")}
            )
        elif channel == DISCONNECT:
            del self.inboxes[reply_channel]
            inbox.put_nowait({"type": DISCONNECT, "code": content.get("code", NO_STATUS)})
        return True

    async def _run(self, scope: dict, inbox: asyncio.Queue, reply_channel: str) -> None:
        accepted = False
        closed = False

        async def send(event: dict) -> None:
            nonlocal accepted, closed
            if closed:
                return
            reply = reply_from_event(event, accepted)
            accepted = accepted or event["type"] == "websocket.accept"
            closed = event["type"] == "websocket.close"
            if local.paused:  # the client does not read: wait for it (backpressure)
                await local.writable(reply_channel)
            local.deliver(reply_channel, reply)

        try:
            await self.app(scope, inbox.get, send)
        except Exception:
            logger.exception("The ASGI application raised on the WebSocket %s.", scope["path"])
            if not closed:
                local.deliver(
                    reply_channel, {"close": INTERNAL_ERROR} if accepted else {"accept": False}
                )
            return
        finally:
            self.inboxes.pop(reply_channel, None)
        # ASGI: an application that returns ends its connection.
        if not closed:
            local.deliver(
                reply_channel, {"close": NORMAL_CLOSURE} if accepted else {"accept": False}
            )


def events_from_reply(content: dict, accepted: bool) -> list[dict]:
    """The ASGI events a consumer's reply becomes; the first ``accept`` comes before others.

    Raises ValueError for a reply that neither accepts nor refuses a connection not yet open.
    """
    events = []
    if not accepted:
        accept = content.get("accept")
        if accept is False or (accept is None and content.get("close")):
            return [{"type": "websocket.close", "code": NORMAL_CLOSURE}]
        if not (accept or content.get("text") is not None or content.get("bytes") is not None):
            raise ValueError(
                f"the connection is not accepted yet and {sorted(content)} neither accepts nor "
                "refuses it; send {'accept': True} or {'accept': False} first"
            )
        events.append(
            {
                "type": "websocket.accept",
                "subprotocol": content.get("subprotocol"),
                "headers": list(content.get("headers", ())),
            }
        )
    if content.get("text") is not None:
        text = positioned_text(content["text"], content.get("position"))
        events.append({"type": "websocket.send", "text": text})
    if content.get("bytes") is not None:
        events.append({"type": "websocket.send", "bytes": content["bytes"]})
    close = content.get("close")
    if close:
        events.append(
            {"type": "websocket.close", "code": NORMAL_CLOSURE if close is True else close}
        )
    return events


async def serve_websocket(host: Host, scope: dict, receive: Callable, send: Callable) -> None:
    """Serve one ASGI WebSocket connection with the routed consumers of *host*.

    Events run their consumers one after the other, in order, as under ``channels serve``;
    with no route for ``websocket.connect`` the connection is accepted, and a consumer that
    raises closes it with 1011 (refuses it while connecting).
    """
    event = await receive()
    if event["type"] != CONNECT:
        return
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue = asyncio.Queue()
    reply_channel = host.open_reply(REPLY_PREFIX, replies.put_nowait)
    connect = {
        "reply_channel": reply_channel,
        "path": scope["path"],
        "query_string": scope.get("query_string", b""),
        "headers": [[bytes(name).lower(), bytes(value)] for name, value in scope["headers"]],
        "order": 0,
        "client": list(scope["client"]) if scope.get("client") else None,
        "server": list(scope["server"]) if scope.get("server") else None,
    }
    if scope.get("subprotocols"):
        connect["subprotocols"] = list(scope["subprotocols"])
    state = {"accepted": False, "closed": False}

    async def forward() -> None:
        while not state["closed"]:
            reply = await replies.get()
            try:
                events = events_from_reply(reply, state["accepted"])
            except ValueError as error:
                logger.error("A WebSocket reply to %s was refused: %s", reply_channel, error)
                continue
            for outgoing in events:
                await send(outgoing)
                if outgoing["type"] == "websocket.accept":
                    state["accepted"] = True
                elif outgoing["type"] == "websocket.close":
                    state["closed"] = True
                    return

    forwarder = loop.create_task(forward())
    order = 0
    try:
        channel, content = CONNECT, connect
        while True:
            try:
                routed = await host.emit(channel, content, reraise=True)
            except Exception:
                logger.exception(
                    "The consumer of %s for %s raised; closing the connection.",
                    channel,
                    scope["path"],
                )
                replies.put_nowait(
                    {"close": INTERNAL_ERROR} if state["accepted"] else {"accept": False}
                )
            else:
                if not routed and channel == CONNECT:
                    replies.put_nowait({"accept": True})
            if channel == DISCONNECT:
                return
            event = await receive()
            order += 1
            if event["type"] == RECEIVE:
                channel = RECEIVE
                content = {"reply_channel": reply_channel, "path": scope["path"], "order": order}
                if event.get("text") is not None:
                    content["text"] = event["text"]
                else:
                    content["bytes"] = event.get("bytes") or b""
            elif event["type"] == DISCONNECT:
                channel = DISCONNECT
                content = {
                    "reply_channel": reply_channel,
                    "path": scope["path"],
                    "order": order,
                    "code": event.get("code", NO_STATUS),
                }
            else:
                order -= 1
    finally:
        host.close_reply(reply_channel)
        forwarder.cancel()
        await asyncio.gather(forwarder, return_exceptions=True)
