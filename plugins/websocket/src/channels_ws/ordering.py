"""Strict ordering: a connection's messages run in their ``order``, whoever takes them.

In process, the server already runs one connection's consumers one after the other. With
several workers, two messages of one connection can be taken at once; Channels 1's
``enforce_ordering`` fixes that and this is it: the channel session remembers the next order
due; a message that comes early waits on a per-connection wait channel and is sent back to its
channel once the message before it has run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.contrib.sessions.backends.base import UpdateError

from channels_core.channel import Channel
from channels_core.message import Message
from channels_core.sessions import channel_session

NEXT_ORDER_KEY = "__channels_next_order"
WAIT_PREFIX = "websocket.wait."


def wait_channel(reply_channel: str) -> str:
    """The channel where early messages of *reply_channel*'s connection wait."""
    return WAIT_PREFIX + reply_channel.replace("!", ".")


def _admit(message: Message) -> bool:
    """True when *message* is due; otherwise park it on the wait channel."""
    order = message.content.get("order")
    if not isinstance(order, int):
        raise ValueError(
            f"strict_ordering needs an integer 'order' in each message, but the message on "
            f"{message.channel.name!r} has order={order!r}."
        )
    if order == message.channel_session.get(NEXT_ORDER_KEY, 0):
        return True
    Channel(wait_channel(message.reply_channel.name)).send(
        {"channel": message.channel.name, "content": message.content}
    )
    return False


async def _release(message: Message) -> None:
    """Send the waiting messages back to their channels, now that the next one is due."""
    layer = message.channel_layer
    name = wait_channel(message.reply_channel.name)
    for _ in range((await layer.stats(name)).pending):
        waiting = await layer.receive(name)
        await Channel(waiting["channel"], alias=message.alias).asend(waiting["content"])


def _done(message: Message) -> None:
    message.channel_session[NEXT_ORDER_KEY] = message.content["order"] + 1
    # Saved before releasing, so a released message finds its turn recorded; the session
    # may not exist yet in the store (its first message).
    try:
        message.channel_session.save()
    except UpdateError:
        message.channel_session.save(must_create=True)


def enforce_ordering(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func(message, **kwargs)`` only in ``order``; wraps it in a channel session."""
    if iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_inner(message: Message, *args: Any, **kwargs: Any) -> Any:
            if not await sync_to_async(_admit)(message):
                return None
            try:
                return await func(message, *args, **kwargs)
            finally:
                await sync_to_async(_done)(message)
                await _release(message)

        return channel_session(async_inner)

    @functools.wraps(func)
    def inner(message: Message, *args: Any, **kwargs: Any) -> Any:
        if not _admit(message):
            return None
        try:
            return func(message, *args, **kwargs)
        finally:
            _done(message)
            async_to_sync(_release)(message)

    return channel_session(inner)
