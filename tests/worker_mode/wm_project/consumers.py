"""Consumers whose replies say who ran them: the code version, the pool and the process."""

import json
import os

from channels_http.consumers import AsyncHttpConsumer
from channels_ws import WebsocketConsumer


def signature() -> dict:
    """Which code, pool and process ran a consumer."""
    return {
        "version": os.environ.get("WM_VERSION", "v1"),
        "pool": os.environ.get("WM_POOL", ""),
        "pid": os.getpid(),
    }


class Hello(AsyncHttpConsumer):
    """Answers ``hello <query>`` and its signature, as JSON."""

    async def handle(self, body):
        answer = {"answer": f"hello {self.message['query_string'].decode()}", **signature()}
        await self.send_response(
            200, json.dumps(answer).encode(), [(b"content-type", b"application/json")]
        )


class Echo(WebsocketConsumer):
    """Echoes each text message with its signature, as JSON."""

    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=json.dumps({"echo": text, **signature()}))


class Room(WebsocketConsumer):
    """Joins the group ``room``; what one member says goes to every member."""

    groups = ["room"]

    def receive(self, text=None, bytes=None, **kwargs):
        self.group_send("room", text=f"room: {text}")


class Ordered(Echo):
    """:class:`Echo`, one connection's messages run in their order across workers."""

    strict_ordering = True
