"""Consumers that send more than their clients read."""

import asyncio
import logging

from channels_core import Group
from channels_core.local import is_bound
from channels_ws.consumers import AsyncWebsocketConsumer

logger = logging.getLogger("flow_project")
ROOM = "flow-room"


class Blast(AsyncWebsocketConsumer):
    """Answers ``"COUNT SIZE"`` with COUNT binary messages of SIZE bytes, logging every 50th
    send, and how many it sent while the connection's reply channel was open."""

    async def receive(self, text=None, bytes=None, **kwargs):
        count, size = map(int, text.split())
        reply = self.message.reply_channel
        sent = 0
        while sent < count and is_bound(reply.name):
            await self.send(bytes=sent.to_bytes(4, "big") * (size // 4))
            sent += 1
            if sent % 50 == 0:
                logger.warning("blast: sent %d", sent)
        logger.warning("blast: %d of %d sent while open", sent, count)


class Room(AsyncWebsocketConsumer):
    """Every connection joins one group; ``"COUNT SIZE"`` sends COUNT numbered binary messages
    of SIZE bytes to the group, a millisecond apart; binary messages are ignored."""

    groups = [ROOM]

    async def receive(self, text=None, bytes=None, **kwargs):
        if text is None:
            return
        count, size = map(int, text.split())
        for index in range(count):
            await Group(ROOM).asend({"bytes": index.to_bytes(4, "big") * (size // 4)})
            await asyncio.sleep(0.001)
        logger.warning("room: %d sent", count)


def stream(message):
    """An HTTP response of ``?n=`` parts of ``?size=`` bytes, streamed."""
    from urllib.parse import parse_qs

    query = parse_qs(message["query_string"].decode())
    count, size = int(query["n"][0]), int(query["size"][0])
    reply = message.reply_channel
    reply.send(
        {
            "status": 200,
            "headers": [[b"content-type", b"application/octet-stream"]],
            "content": b"",
            "more_content": True,
        }
    )
    sent = 0
    while sent < count and is_bound(reply.name):
        reply.send({"content": b"s" * size, "more_content": True})
        sent += 1
        if sent % 50 == 0:
            logger.warning("stream: sent %d", sent)
    if is_bound(reply.name):
        reply.send({"content": b"", "more_content": False})
    logger.warning("stream: %d of %d sent while open", sent, count)
