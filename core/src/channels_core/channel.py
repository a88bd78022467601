"""``Channel``: a named FIFO queue on a channel layer, usable from sync and async code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import async_to_sync

from . import local
from .exceptions import LayerUnavailable
from .layers import DEFAULT_CHANNEL_LAYER, BaseChannelLayer, get_channel_layer
from .names import check_channel_name
from .outage import outages, ride_out


def in_event_loop() -> bool:
    """True when the calling thread is running an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def sync_or_async(coroutine_function, *args: Any) -> Any:
    """Run *coroutine_function* to completion from sync code, or return its awaitable.

    Called in a thread that runs an event loop, it returns the coroutine for the caller to
    ``await``; called from plain sync code (a sync consumer, a Django view), it runs it and
    returns the result.
    """
    # in_event_loop() inlined: this runs for every send, and a call less is measurable.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return async_to_sync(coroutine_function)(*args)
    return coroutine_function(*args)


class Channel:
    """A channel by name. ``Channel("thumbnails").send({"id": 4})``.

    ``send`` blocks until the message is on the layer when called from sync code, and returns
    an awaitable when called from a coroutine: ``await Channel(name).send(content)``.
    """

    __slots__ = ("_layer", "alias", "name")

    def __init__(
        self,
        name: str,
        alias: str = DEFAULT_CHANNEL_LAYER,
        channel_layer: BaseChannelLayer | None = None,
    ) -> None:
        self.name = check_channel_name(name)
        self.alias = alias
        self._layer = channel_layer

    @property
    def channel_layer(self) -> BaseChannelLayer:
        """The layer this channel lives on."""
        if self._layer is None:
            self._layer = get_channel_layer(self.alias)
        return self._layer

    def send(self, content: dict) -> Awaitable[None] | None:
        """Send *content* (a dict of msgpack-safe values); see the class docstring."""
        return sync_or_async(self.asend, content)

    async def asend(self, content: dict) -> None:
        """Send *content*, from async code only.

        A send to a connection of this process whose client does not read what it is sent
        waits for it to catch up first (backpressure; :mod:`channels_core.flow`). In a
        process that rides out layer outages (a server, a worker), a send while the layer is
        unreachable is held and sent when it is back (:mod:`channels_core.outage`).
        """
        if local.paused:
            await local.writable(self.name)
        if local.deliver(self.name, content):
            return
        layer = self.channel_layer
        if outages and layer in outages:
            await outages[layer].send(self.name, content)
            return
        try:
            await layer.send(self.name, content)
        except LayerUnavailable as error:
            ride_out(layer, self.name, content, error)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Channel {self.name}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Channel):
            return self.name == other.name and self.alias == other.alias
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.name, self.alias))


async def new_channel(prefix: str = "specific", alias: str = DEFAULT_CHANNEL_LAYER) -> Channel:
    """A fresh process-specific :class:`Channel` on the layer of *alias*."""
    layer = get_channel_layer(alias)
    return Channel(await layer.new_channel(prefix), alias=alias, channel_layer=layer)
