"""``Group``: a named set of channels that receive the same messages."""

from __future__ import annotations

from collections.abc import Awaitable

from .channel import Channel, sync_or_async
from .exceptions import LayerUnavailable
from .history import History, Position
from .layers import DEFAULT_CHANNEL_LAYER, BaseChannelLayer, get_channel_layer
from .names import check_group_name
from .outage import GROUP_ADD, GROUP_DISCARD, GROUP_SEND, outages, ride_out


class Group:
    """A group by name. ``Group("chat-lobby").send({"text": "hi"})``.

    Like :class:`~channels_core.channel.Channel`, every method blocks when called from sync
    code and returns an awaitable when called from a coroutine. Membership expires after the
    layer's ``group_expiry``; a send skips (and counts) members whose channel is full.

    In a process that rides out layer outages (a server, a worker), a send, add or discard
    while the layer is unreachable is held with the process's channel sends, in order, and
    made when it is back (:mod:`channels_core.outage`); a send held so returns None, its
    position not known yet.
    """

    __slots__ = ("_layer", "alias", "name")

    def __init__(
        self,
        name: str,
        alias: str = DEFAULT_CHANNEL_LAYER,
        channel_layer: BaseChannelLayer | None = None,
    ) -> None:
        self.name = check_group_name(name)
        self.alias = alias
        self._layer = channel_layer

    @property
    def channel_layer(self) -> BaseChannelLayer:
        """The layer this group lives on."""
        if self._layer is None:
            self._layer = get_channel_layer(self.alias)
        return self._layer

    def add(self, channel: Channel | str, presence: dict | None = None) -> Awaitable[None] | None:
        """Add *channel* (a :class:`Channel` or a name) to the group; with *presence* (a
        small msgpack-safe dict: user id, name…) it is also present with that info."""
        return sync_or_async(self.aadd, channel, presence)

    def discard(self, channel: Channel | str) -> Awaitable[None] | None:
        """Remove *channel* from the group (and its presence); no error when it is not a
        member."""
        return sync_or_async(self.adiscard, channel)

    def send(self, content: dict) -> Awaitable[Position | None] | Position | None:
        """Send *content* to every member; its :class:`~channels_core.history.Position`
        when the group keeps history (the layer's ``history`` option), else None."""
        return sync_or_async(self.asend, content)

    def presence(self) -> Awaitable[dict[str, dict]] | dict[str, dict]:
        """The present members: ``{channel: info}``."""
        return sync_or_async(self.apresence)

    def history(self, since: Position | None = None) -> Awaitable[History] | History:
        """What the group kept after the position *since* (everything kept when None): a
        :class:`~channels_core.history.History` with ``.messages`` (``(position,
        content)`` pairs, oldest first) and ``.complete``."""
        return sync_or_async(self.ahistory, since)

    async def aadd(self, channel: Channel | str, presence: dict | None = None) -> None:
        """:meth:`add`, from async code only."""
        layer, name = self.channel_layer, str(channel)
        held = {"channel": name, "presence": presence}
        if outages and layer in outages:
            await outages[layer].send(self.name, held, GROUP_ADD)
            return
        try:
            if presence is None:
                await layer.group_add(self.name, name)
            else:
                await layer.group_add(self.name, name, presence=presence)
        except LayerUnavailable as error:
            ride_out(layer, self.name, held, error, GROUP_ADD)

    async def adiscard(self, channel: Channel | str) -> None:
        """:meth:`discard`, from async code only."""
        layer, name = self.channel_layer, str(channel)
        if outages and layer in outages:
            await outages[layer].send(self.name, {"channel": name}, GROUP_DISCARD)
            return
        try:
            await layer.group_discard(self.name, name)
        except LayerUnavailable as error:
            ride_out(layer, self.name, {"channel": name}, error, GROUP_DISCARD)

    async def asend(self, content: dict) -> Position | None:
        """:meth:`send`, from async code only."""
        layer = self.channel_layer
        if outages and layer in outages:
            await outages[layer].send(self.name, content, GROUP_SEND)
            return None
        try:
            return await layer.group_send(self.name, content)
        except LayerUnavailable as error:
            ride_out(layer, self.name, content, error, GROUP_SEND)
            return None

    async def apresence(self) -> dict[str, dict]:
        """:meth:`presence`, from async code only."""
        return await self.channel_layer.group_presence(self.name)

    async def ahistory(self, since: Position | None = None) -> History:
        """:meth:`history`, from async code only."""
        return await self.channel_layer.group_history(self.name, Position.of(since))

    def __repr__(self) -> str:
        return f"<Group {self.name}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Group):
            return self.name == other.name and self.alias == other.alias
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.name, self.alias))
