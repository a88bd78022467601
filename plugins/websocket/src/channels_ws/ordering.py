"""Strict ordering: a connection's messages run in their ``order``, whoever takes them.

In process, the server already runs one connection's consumers one after the other. With
several workers, two messages of one connection can be taken at once; Channels 1's
``enforce_ordering`` fixes that and this is it. The connection's channel session remembers
the next ``order`` due. A message that comes early is parked on the wait channel of its own
order (``websocket.wait.<reply channel>.<order>``); the consumer of the message before it,
once it has run and saved the next order, sends the parked message back to its channel.

Two workers can race: the one parking message *n* and the one finishing *n - 1*. Each checks
after its own write: the runner saves the next order, then looks for a parked message; the
parker parks, then reads the next order again. Whichever comes second sees the other's write,
so a parked message that is due is always sent back (by one of them: the layer delivers it to
one receiver). This needs a session engine every worker shares (database, file, or a shared
cache), and a layer whose ``stats`` counts a channel's pending messages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.contrib.sessions.backends.base import UpdateError

from channels_core.channel import Channel
from channels_core.message import Message
from channels_core.sessions import channel_session, session_for_reply_channel

logger = logging.getLogger(__name__)

NEXT_ORDER_KEY = "__channels_next_order"
WAIT_PREFIX = "websocket.wait."
# A parked message is sent back by whoever takes it off its wait channel first; the other
# taker gives up after this long. The message is already on the layer when both try, so the
# winner has it within a round trip.
TAKE_TIMEOUT = 0.5
TAKE_ATTEMPTS = 5


def wait_channel(reply_channel: str, order: int) -> str:
    """The channel where the message of *order* of *reply_channel*'s connection waits."""
    return f"{WAIT_PREFIX}{reply_channel.replace('!', '.')}.{order}"


def _order(message: Message) -> int:
    order = message.content.get("order")
    if isinstance(order, bool) or not isinstance(order, int):
        raise ValueError(
            f"strict_ordering needs an integer 'order' in each message, but the message on "
            f"{message.channel.name!r} has order={order!r}."
        )
    return order


def _admit(message: Message) -> bool:
    """True when *message* is due; otherwise park it (or drop it when it already ran)."""
    order = _order(message)
    due = message.channel_session.get(NEXT_ORDER_KEY, 0)
    if order == due:
        return True
    if order < due:
        logger.warning(
            "Dropped message %d of %s on %r: the connection is already at message %d.",
            order,
            message.reply_channel.name,
            message.channel.name,
            due,
        )
        return False
    Channel(wait_channel(message.reply_channel.name, order), alias=message.alias).send(
        {"channel": message.channel.name, "content": message.content}
    )
    # Parked. If the message before it finished while this one was being parked, its
    # consumer may have looked for this one too early: release it here.
    stored = session_for_reply_channel(message.reply_channel.name)
    if stored.get(NEXT_ORDER_KEY, 0) == order:
        async_to_sync(_release)(message, order)
    return False


async def _release(message: Message, order: int) -> None:
    """Send the message of *order* back to its channel if it is parked."""
    layer = message.channel_layer
    name = wait_channel(message.reply_channel.name, order)
    for _ in range(TAKE_ATTEMPTS):
        if not (await layer.stats(name)).pending:
            return
        try:
            waiting = await asyncio.wait_for(layer.receive(name), TAKE_TIMEOUT)
        except TimeoutError:
            # Another worker took it; a second look at the stats says so.
            continue
        await Channel(waiting["channel"], alias=message.alias).asend(waiting["content"])
        return
    logger.warning("Message %d stayed on its wait channel %s; not released.", order, name)


def _done(message: Message) -> int:
    """Record that *message* ran; return the order now due."""
    session = message.channel_session
    due = message.content["order"] + 1
    session[NEXT_ORDER_KEY] = due
    # Saved before releasing, so a released message finds its turn recorded; the session
    # may not exist yet in the store (its first message).
    try:
        session.save()
    except UpdateError:
        session.save(must_create=True)
    # Saved: channel_session must not save it again later, over what the next message's
    # consumer (maybe in another worker) saved meanwhile.
    session.modified = False
    return due


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
                await _release(message, await sync_to_async(_done)(message))

        return channel_session(async_inner)

    @functools.wraps(func)
    def inner(message: Message, *args: Any, **kwargs: Any) -> Any:
        if not _admit(message):
            return None
        try:
            return func(message, *args, **kwargs)
        finally:
            async_to_sync(_release)(message, _done(message))

    return channel_session(inner)
