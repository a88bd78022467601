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
one receiver). Slight ordering (``slight=True``, as in Channels 1.0) only holds the messages
that come before the connect has run, all on the wait channel of order 1, and sends them all
back once it has. This needs a session engine every worker shares (database, file, or a shared
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
# Slight ordering parks every message that comes before the connect ran on one wait channel,
# that of the first message after it.
SLIGHT_WAIT_ORDER = 1


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


def _admit(message: Message, slight: bool = False) -> bool:
    """True when *message* is due; otherwise park it (or drop it when it already ran)."""
    order = _order(message)
    due = message.channel_session.get(NEXT_ORDER_KEY, 0)
    if slight:
        if order == 0 or due > 0:
            return True
        # Early: it waits for the connect, with the others that came before it ran.
        if _park(message, SLIGHT_WAIT_ORDER) > 0:
            async_to_sync(_release)(message, SLIGHT_WAIT_ORDER, True)
        return False
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
    if _park(message, order) == order:
        async_to_sync(_release)(message, order)
    return False


def _park(message: Message, order: int) -> int:
    """Park *message* on the wait channel of *order*; return the order due now.

    The order is read again after parking: if the message before finished meanwhile, its
    consumer may have looked for this one too early, and the caller releases it.
    """
    Channel(wait_channel(message.reply_channel.name, order), alias=message.alias).send(
        {"channel": message.channel.name, "content": message.content}
    )
    return session_for_reply_channel(message.reply_channel.name).get(NEXT_ORDER_KEY, 0)


async def _release(message: Message, order: int, every: bool = False) -> None:
    """Send the message of *order* back to its channel if it is parked (*every* message
    parked there, with *every*)."""
    layer = message.channel_layer
    name = wait_channel(message.reply_channel.name, order)
    attempts = 0
    while attempts < TAKE_ATTEMPTS:
        if not (await layer.stats(name)).pending:
            return
        try:
            waiting = await asyncio.wait_for(layer.receive(name), TAKE_TIMEOUT)
        except TimeoutError:
            # Another worker took it; a second look at the stats says so.
            attempts += 1
            continue
        await Channel(waiting["channel"], alias=message.alias).asend(waiting["content"])
        if not every:
            return
    logger.warning("Message %d stayed on its wait channel %s; not released.", order, name)


def _done(message: Message, slight: bool = False) -> tuple[int, bool] | None:
    """Record that *message* ran; return what to release: ``(order, every)``, or None."""
    order = message.content["order"]
    if slight and order:
        # Slight ordering writes the session once, for the connect.
        return None
    session = message.channel_session
    due = order + 1
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
    return due, slight


def enforce_ordering(
    func: Callable[..., Any] | None = None, slight: bool = False
) -> Callable[..., Any]:
    """Run ``func(message, **kwargs)`` only in ``order``; wraps it in a channel session.

    ``@enforce_ordering`` (or ``@enforce_ordering()``) is strict: every message of a
    connection runs in its ``order``. ``@enforce_ordering(slight=True)`` is Channels 1.0's
    slight ordering: the connect message (``order`` 0) runs before the others, which then
    run as they come, in parallel across workers; the session is written once, for the
    connect. Do not mix both on one connection's consumers.
    """
    if func is None:
        return functools.partial(enforce_ordering, slight=slight)
    if iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_inner(message: Message, *args: Any, **kwargs: Any) -> Any:
            if not await sync_to_async(_admit)(message, slight):
                return None
            try:
                return await func(message, *args, **kwargs)
            finally:
                released = await sync_to_async(_done)(message, slight)
                if released is not None:
                    await _release(message, *released)

        return channel_session(async_inner)

    @functools.wraps(func)
    def inner(message: Message, *args: Any, **kwargs: Any) -> Any:
        if not _admit(message, slight):
            return None
        try:
            return func(message, *args, **kwargs)
        finally:
            released = _done(message, slight)
            if released is not None:
                async_to_sync(_release)(message, *released)

    return channel_session(inner)
