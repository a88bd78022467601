"""Consumers of the UDP test project."""

import asyncio
import json
import logging
import os

from channels_core import Group

logger = logging.getLogger(__name__)


async def echo(message):
    """Answer a datagram: most are echoed upper-cased; a few words are commands."""
    data = message["data"]
    reply = message.reply_channel
    if data == b"":
        await reply.send({"data": b"(empty)"})
    elif data == b"who":
        keys = {key: message[key] for key in ("client", "server", "reply_channel")}
        await reply.send({"data": json.dumps({**keys, "pid": os.getpid()}).encode()})
    elif data == b"slow":
        logger.warning("slow consumer started")
        await asyncio.sleep(1)
        await reply.send({"data": b"SLOW DONE"})
    elif data == b"twice":
        await reply.send({"data": b"ONE"})
        await reply.send({"data": b"TWO"})
    elif data == b"huge":
        await reply.send({"data": b"x" * 70000})
    elif data == b"text":
        await reply.send({"data": "not bytes"})
    else:
        await reply.send({"data": data.upper()})


def join(message, room):
    """A sync consumer: join a group, then send to it; the send goes through the layer."""
    Group(room).add(message.reply_channel)
    Group(room).send({"data": f"JOINED {room}".encode()})
