"""Echo consumers, and a "monitor" data channel that hears about every connect and disconnect.

A data channel labelled "signed" gets its echoes prefixed with the pid of the process that ran
the consumer, to tell a worker's answers from the server's.
"""

import logging
import os

from channels_core import Group
from channels_core.local import is_bound

logger = logging.getLogger(__name__)
MONITOR = Group("webrtc-monitor")


async def connect(message):
    """A monitor joins the group; every connect is announced to it."""
    if message["label"] == "monitor":
        await MONITOR.add(message["reply_channel"])
    await MONITOR.send({"text": f"connect {message['peer']} {message['label']}"})


async def receive(message):
    """Echo text and bytes (signed on "signed"); "close" gets "bye" and closes the channel."""
    signature = f"{os.getpid()} " if message["label"] == "signed" else ""
    if message.get("text", "").startswith("blast "):
        await blast(message)
    elif message.get("text") == "close":
        await message.reply_channel.send({"text": "bye", "close": True})
    elif "text" in message:
        await message.reply_channel.send({"text": signature + message["text"]})
    else:
        await message.reply_channel.send({"bytes": signature.encode() + message["bytes"]})


async def blast(message):
    """``"blast COUNT SIZE"``: COUNT binary messages of SIZE bytes, as fast as the data channel
    takes them, logging every 50th and how many went while it was open."""
    count, size = map(int, message["text"].split()[1:])
    reply = message.reply_channel
    sent = 0
    while sent < count and is_bound(reply.name):
        await reply.send({"bytes": sent.to_bytes(4, "big") * (size // 4)})
        sent += 1
        if sent % 50 == 0:
            logger.warning("blast: sent %d", sent)
    logger.warning("blast: %d of %d sent while open", sent, count)


async def disconnect(message):
    """Announce the disconnect to the monitors, and in the server's log."""
    logger.info("webrtc.disconnect %s %s", message["peer"], message["label"])
    await MONITOR.discard(message["reply_channel"])
    await MONITOR.send({"text": f"disconnect {message['peer']} {message['label']}"})
