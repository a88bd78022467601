"""Consumers whose answers say which process and which code version ran them."""

import json
import os
from pathlib import Path

from channels_http.consumers import AsyncHttpConsumer
from channels_ws import WebsocketConsumer

# Read once, when the code is imported: a process started later reads the file anew.
VERSION = Path(os.environ["PROC_VERSION_FILE"]).read_text().strip()


class Who(AsyncHttpConsumer):
    """Answers the code's version and the process id, as JSON."""

    async def handle(self, body):
        answer = json.dumps({"version": VERSION, "pid": os.getpid()}).encode()
        await self.send_response(200, answer, [(b"content-type", b"application/json")])


class Room(WebsocketConsumer):
    """Joins the group ``room``; ``pid`` answers the process, anything else goes to the room."""

    groups = ["room"]

    def receive(self, text=None, bytes=None, **kwargs):
        if text == "pid":
            self.send(text=str(os.getpid()))
        else:
            self.group_send("room", text=f"room: {text}")


async def udp_pid(message):
    """Answers a datagram with the datagram and the process id."""
    await message.reply_channel.send({"data": message["data"] + f" {os.getpid()}".encode()})
