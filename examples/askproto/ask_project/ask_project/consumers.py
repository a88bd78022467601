"""Consumers of the ask project: each question gets one reply, ``{"answer": ...}``."""

import asyncio
import logging

logger = logging.getLogger(__name__)

SLOW_SECONDS = 1.5


async def add(message, a, b):
    """Answer the sum."""
    await message.reply_channel.send({"answer": str(int(a) + int(b))})


def shout(message, text):
    """A sync consumer (run in a thread, where the Django ORM is safe): answer in capitals."""
    message.reply_channel.send({"answer": text.upper()})


async def slowly(message, text):
    """Take a while to answer, as a consumer that queries something slow would."""
    logger.info("Answering %r slowly.", text)
    await asyncio.sleep(SLOW_SECONDS)
    await message.reply_channel.send({"answer": text})


async def ignore(message):
    """Never answer: the client gets TIMEOUT once the reply timeout is up."""
