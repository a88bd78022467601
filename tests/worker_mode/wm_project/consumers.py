"""Consumers whose replies say who ran them: the code version, the pool and the process."""

import json
import os
import time

from channels_http.consumers import AsyncHttpConsumer
from channels_ws import WebsocketConsumer, enforce_ordering


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


@enforce_ordering(slight=True)
def slight_connect(message):
    """Accepts at once, so the client sends while this still runs, then marks the session."""
    message.reply_channel.send({"accept": True})
    time.sleep(1)
    message.channel_session["connected"] = True


@enforce_ordering(slight=True)
def slight_receive(message):
    """Echoes, saying whether the connect had finished when this ran."""
    connected = message.channel_session.get("connected", False)
    reply = {"echo": message["text"], "connected": connected, **signature()}
    message.reply_channel.send({"text": json.dumps(reply)})
