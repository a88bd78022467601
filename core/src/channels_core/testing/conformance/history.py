"""Conformance: group presence and group history (the ``presence`` and ``history``
extensions; a layer without them skips these tests, saying so)."""

from __future__ import annotations

import asyncio

import pytest

from ...exceptions import ImproperlyConfigured
from ...history import History, Position
from ...layers import BaseChannelLayer
from .base import ConformanceBase, fresh


def needs(layer: BaseChannelLayer, extension: str) -> None:
    if extension not in layer.extensions:
        pytest.skip(f"{type(layer).__name__} has no {extension} extension")


async def history_layer(layer_factory, **config) -> BaseChannelLayer:
    """A layer built with a ``history`` option; the test is skipped for a layer without the
    history extension (which refuses the option)."""
    try:
        return await layer_factory(**config)
    except ImproperlyConfigured as error:
        if "keeps no group history" not in str(error):
            raise
        pytest.skip(str(error))


class PresenceConformance(ConformanceBase):
    """``group_add(..., presence=info)``, ``group_presence`` and ``group_discard``."""

    async def test_present_members_and_their_info(self, layer):
        needs(layer, "presence")
        group, ada, grace, quiet = fresh("room"), fresh("ada"), fresh("grace"), fresh("quiet")
        await layer.group_add(group, ada, presence={"user": 1, "name": "Ada"})
        await layer.group_add(group, grace, presence={"user": 2, "name": "Grace"})
        await layer.group_add(group, quiet)  # a member, not present
        assert await layer.group_presence(group) == {
            ada: {"user": 1, "name": "Ada"},
            grace: {"user": 2, "name": "Grace"},
        }
        # Present members are members: a group send reaches all three.
        await layer.group_send(group, {"n": 1})
        for channel in (ada, grace, quiet):
            assert await self.receive(layer, channel) == {"n": 1}
        await layer.group_discard(group, ada)
        assert await layer.group_presence(group) == {grace: {"user": 2, "name": "Grace"}}
        assert await layer.group_presence(fresh("empty")) == {}

    async def test_adding_again_replaces_the_info_and_the_reader_gets_a_copy(self, layer):
        needs(layer, "presence")
        group, channel = fresh("room"), fresh("ada")
        await layer.group_add(group, channel, presence={"status": "away"})
        await layer.group_add(group, channel, presence={"status": "here"})
        present = await layer.group_presence(group)
        assert present == {channel: {"status": "here"}}
        present[channel]["status"] = "changed by the reader"
        assert await layer.group_presence(group) == {channel: {"status": "here"}}

    async def test_presence_ends_with_the_membership(self, layer_factory):
        layer = await layer_factory(group_expiry=self.short_expiry)
        needs(layer, "presence")
        group, channel = fresh("room"), fresh("ada")
        await layer.group_add(group, channel, presence={"user": 1})
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        assert await layer.group_presence(group) == {}

    async def test_presence_info_must_be_a_dict(self, layer):
        needs(layer, "presence")
        with pytest.raises(TypeError, match="presence info must be a dict"):
            await layer.group_add(fresh("room"), fresh("ada"), presence=["not", "a", "dict"])


class HistoryConformance(ConformanceBase):
    """Group history: positions, ``group_history(since=...)``, trimming and epochs."""

    async def test_sends_get_positions_and_members_see_them(self, layer_factory):
        layer = await history_layer(layer_factory, history={"chat.*": {"size": 10}})
        needs(layer, "history")
        group, member = fresh("chat"), fresh("member")
        await layer.group_add(group, member)
        positions = [await layer.group_send(group, {"n": n}) for n in range(3)]
        assert all(isinstance(position, Position) for position in positions)
        assert len({position.epoch for position in positions}) == 1
        assert [position.offset for position in positions] == sorted(
            {position.offset for position in positions}
        )
        for n, position in enumerate(positions):
            assert await self.receive(layer, member) == {"n": n, "position": list(position)}
        # A group without history: no position, members get the message as it is.
        plain = fresh("plain")
        await layer.group_add(plain, member)
        assert await layer.group_send(plain, {"n": 9}) is None
        assert await self.receive(layer, member) == {"n": 9}

    async def test_history_since_a_position_is_what_came_after(self, layer_factory):
        layer = await history_layer(layer_factory, history={"chat.*": {"size": 10}})
        needs(layer, "history")
        group = fresh("chat")
        empty = await layer.group_history(group)
        assert (empty.messages, empty.complete, empty.position) == ([], True, None)
        positions = [await layer.group_send(group, {"n": n}) for n in range(5)]
        everything = await layer.group_history(group)
        assert isinstance(everything, History)
        assert everything.messages == [(p, {"n": n}) for n, p in enumerate(positions)]
        assert everything.complete
        assert everything.position == positions[-1]
        after = await layer.group_history(group, since=positions[1])
        assert after.messages == [(p, {"n": n + 2}) for n, p in enumerate(positions[2:])]
        assert after.complete
        # A position as msgpack brings it back: a list.
        assert (await layer.group_history(group, since=list(positions[3]))).messages == [
            (positions[4], {"n": 4})
        ]
        latest = await layer.group_history(group, since=positions[-1])
        assert (latest.messages, latest.complete) == ([], True)

    async def test_trimmed_by_size_is_incomplete_before_the_oldest_kept(self, layer_factory):
        layer = await history_layer(layer_factory, history={"chat.*": {"size": 3}})
        needs(layer, "history")
        group = fresh("chat")
        positions = [await layer.group_send(group, {"n": n}) for n in range(6)]
        kept = await layer.group_history(group)
        assert [content for _, content in kept.messages] == [{"n": 3}, {"n": 4}, {"n": 5}]
        assert not kept.complete
        # Since the last dropped message: nothing is missing.
        since_dropped = await layer.group_history(group, since=positions[2])
        assert since_dropped.complete
        assert [content["n"] for _, content in since_dropped.messages] == [3, 4, 5]
        since_older = await layer.group_history(group, since=positions[0])
        assert not since_older.complete
        assert [content["n"] for _, content in since_older.messages] == [3, 4, 5]

    async def test_trimmed_by_age(self, layer_factory):
        layer = await history_layer(layer_factory, history={"chat.*": {"ttl": self.short_expiry}})
        needs(layer, "history")
        group = fresh("chat")
        first = await layer.group_send(group, {"n": 0})
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        second = await layer.group_send(group, {"n": 1})
        kept = await layer.group_history(group)
        assert kept.messages == [(second, {"n": 1})]
        assert not kept.complete
        assert (await layer.group_history(group, since=first)).complete

    async def test_a_flushed_store_is_a_new_epoch(self, layer_factory):
        layer = await history_layer(layer_factory, history={"chat.*": {"size": 10}})
        needs(layer, "history")
        group = fresh("chat")
        before = await layer.group_send(group, {"n": 0})
        await layer.flush()
        after = await layer.group_send(group, {"n": 1})
        assert after.epoch != before.epoch
        since_before = await layer.group_history(group, since=before)
        assert not since_before.complete
        assert since_before.messages == [(after, {"n": 1})]

    async def test_history_of_a_group_without_it_and_bad_positions(self, layer_factory):
        layer = await history_layer(layer_factory, history={"chat.*": {"size": 10}})
        needs(layer, "history")
        with pytest.raises(ValueError, match="keeps no history"):
            await layer.group_history(fresh("plain"))
        for bad in ("abc", [1, 2], ["epoch"], ["epoch", -1], {"epoch": "e"}):
            with pytest.raises(TypeError, match="not a group history position"):
                await layer.group_history(fresh("chat"), since=bad)
            with pytest.raises(ValueError, match="not a group history position"):
                await layer.group_history(fresh("chat"), since=bad)
