"""Process-local channels: reply channels this process serves itself.

A protocol server binds each connection's reply channel here. In-process, a send to a bound
name is a direct call of its handler, never a layer round trip; a send from another thread
is handed to the handler's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from .exceptions import LayerClosed, LayerUnavailable
from .outage import receive_through_outage

logger = logging.getLogger(__name__)

Handler = Callable[[dict], None]

# name -> (the loop, the thread running it, the handler, and where to count its messages:
# a dict and its key, or None). The thread is compared on every delivery instead of asking
# asyncio for the running loop, which costs a getpid() system call per call on Python 3.11.
_handlers: dict[
    str, tuple[asyncio.AbstractEventLoop | None, int, Handler, dict[str, int] | None, str]
] = {}


def bind(
    name: str,
    handler: Handler,
    loop: asyncio.AbstractEventLoop | None = None,
    counts: dict[str, int] | None = None,
    key: str = "",
) -> None:
    """Serve sends to *name* in this process by calling ``handler(content)`` on *loop*.

    Call it from the thread that runs *loop*. The handler must not block: it runs on the
    event loop (or, with no loop, in the sender's thread). With *counts*, each message
    delivered adds one to ``counts[key]`` (a host's reply counts, for metrics): one addition
    here costs less than a counting wrapper around the handler.
    """
    if counts is not None:
        counts.setdefault(key, 0)
    _handlers[name] = (loop, threading.get_ident(), handler, counts, key)


#: name -> its connection's WriteFlow, while that connection is over its high-water mark
#: (channels_core.flow): sends wait, deliveries through the layer may be dropped. Empty nearly
#: always, so the per-send check is one test of an empty dict.
paused: dict[str, Any] = {}


def pause(name: str, flow: Any) -> None:
    """The connection of *name* is over its high-water mark (see :mod:`channels_core.flow`)."""
    paused[name] = flow


def resume(name: str) -> None:
    """The connection of *name* drained its buffer, or is gone."""
    paused.pop(name, None)


async def writable(name: str) -> None:
    """Wait, if the connection of *name* is paused, until it may be sent to again.

    Senders in this process call it before :func:`deliver`, behind a test of ``paused``
    (``if local.paused: await local.writable(name)``), which costs nothing when no
    connection is paused.
    """
    flow = paused.get(name)
    if flow is not None:
        await flow.writable()


def unbind(name: str) -> None:
    """Stop serving *name* locally; later sends go to the layer."""
    _handlers.pop(name, None)


def is_bound(name: str) -> bool:
    """True when *name* is served by this process."""
    return name in _handlers


def deliver(name: str, content: dict) -> bool:
    """Hand *content* to the local handler of *name*; False when *name* is not bound here."""
    entry = _handlers.get(name)
    if entry is None:
        return False
    loop, thread, handler, counts, key = entry
    if counts is not None:
        counts[key] += 1
    if loop is None or thread == threading.get_ident():
        handler(content)
    else:
        loop.call_soon_threadsafe(handler, content)
    return True


async def deliver_from_layer(layer: Any, prefix: str) -> None:
    """Hand what *layer* holds for channels under *prefix* to their local handlers.

    Runs until the layer closes. This is how group sends and sends from other processes
    reach the connections a process serves; a message for a connection that is gone is
    dropped, and so is one its connection's write flow control drops (the client does not
    read: :mod:`channels_core.flow`). While the layer is unreachable it retries, and goes
    on when the layer is back (:func:`channels_core.outage.receive_through_outage`).
    """
    while True:
        try:
            try:
                channel, content = await layer.receive_prefix(prefix)
            except LayerUnavailable as error:
                channel, content = await receive_through_outage(
                    partial(layer.receive_prefix, prefix), error, f"the replies for {prefix}"
                )
        except LayerClosed:
            return
        if paused:
            flow = paused.get(channel)
            if flow is not None and flow.drop(content):
                continue
        if not deliver(channel, content):
            logger.debug("Dropped a message for %s: its connection is gone.", channel)
