"""Consumers of the metrics test project."""

import asyncio
import logging

logger = logging.getLogger(__name__)


async def hello(message):
    """Answer at once."""
    await message.reply_channel.send(
        {"status": 200, "headers": [[b"content-type", b"text/plain"]], "content": b"hello"}
    )


async def slow(message):
    """Log that it started, then answer after a second (the drain test's work in flight)."""
    logger.warning("slow consumer started")
    await asyncio.sleep(1.0)
    await message.reply_channel.send({"status": 200, "content": b"slow done"})


def echo(message):
    """A sync WebSocket echo."""
    message.reply_channel.send({"text": message["text"]})
