"""Conformance: groups (add, renew, discard, send, expiry, full members, listing)."""

from __future__ import annotations

import asyncio

import pytest

from ...layers import BaseChannelLayer
from .base import ConformanceBase, fresh


class GroupConformance(ConformanceBase):
    """Groups: membership, ``group_send``, group expiry and full members."""

    async def test_group_send_reaches_every_member(self, layer):
        group, channels = fresh("group"), [fresh("member") for _ in range(5)]
        for channel in channels:
            await layer.group_add(group, channel)
        await layer.group_send(group, {"text": "all"})
        for channel in channels:
            assert await self.receive(layer, channel) == {"text": "all"}
        assert (await layer.stats()).pending == 0

    async def test_group_add_twice_delivers_once(self, layer):
        group, channel = fresh("group"), fresh("member")
        await layer.group_add(group, channel)
        await layer.group_add(group, channel)
        await layer.group_send(group, {"n": 1})
        assert await self.receive(layer, channel) == {"n": 1}
        await self.assert_nothing(layer, channel)

    async def test_group_discard_stops_delivery_to_that_member_only(self, layer):
        group, kept, gone = fresh("group"), fresh("kept"), fresh("gone")
        await layer.group_add(group, kept)
        await layer.group_add(group, gone)
        await layer.group_discard(group, gone)
        await layer.group_send(group, {"n": 1})
        assert await self.receive(layer, kept) == {"n": 1}
        await self.assert_nothing(layer, gone)

    async def test_group_discard_of_a_non_member_and_send_to_an_empty_group_are_harmless(
        self, layer
    ):
        group = fresh("group")
        await layer.group_discard(group, fresh("stranger"))
        await layer.group_send(group, {"n": 1})
        assert (await layer.stats()).pending == 0

    async def test_group_membership_expires_after_group_expiry(self, layer_factory):
        layer = await layer_factory(group_expiry=self.short_expiry)
        group, channel = fresh("group"), fresh("member")
        await layer.group_add(group, channel)
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        await layer.group_send(group, {"n": 1})
        await self.assert_nothing(layer, channel)

    async def test_group_add_again_renews_membership(self, layer_factory):
        group_expiry = 2 * self.short_expiry + self.expiry_margin
        layer = await layer_factory(group_expiry=group_expiry)
        group, channel = fresh("group"), fresh("member")
        await layer.group_add(group, channel)
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        await layer.group_add(group, channel)
        await asyncio.sleep(self.short_expiry + self.expiry_margin)
        # Past group_expiry since the first add, within it since the second.
        await layer.group_send(group, {"n": 1})
        assert await self.receive(layer, channel) == {"n": 1}

    async def test_group_send_skips_a_full_member_and_counts_it(self, layer_factory):
        layer = await layer_factory(capacity=1)
        group, full, free = fresh("group"), fresh("full"), fresh("free")
        await layer.group_add(group, full)
        await layer.group_add(group, free)
        await layer.send(full, {"n": 0})
        await layer.group_send(group, {"n": 1})
        assert await self.receive(layer, free) == {"n": 1}
        assert await self.receive(layer, full) == {"n": 0}
        await self.assert_nothing(layer, full)
        assert (await layer.stats(full)).full_count == 1
        assert (await layer.stats()).full_count == 1

    async def test_group_send_reaches_process_specific_members_through_receive_prefix(self, layer):
        group = fresh("group")
        channels = [await layer.new_channel() for _ in range(3)]
        for channel in channels:
            await layer.group_add(group, channel)
        await layer.group_send(group, {"n": 1})
        received = [await self.receive_prefix(layer, layer.process_prefix()) for _ in range(3)]
        assert sorted(received) == sorted((channel, {"n": 1}) for channel in channels)

    async def test_group_members_lists_current_members(self, layer):
        if type(layer).group_members is BaseChannelLayer.group_members:
            pytest.skip("this layer does not list group members (optional)")
        group, first, second = fresh("group"), fresh("first"), fresh("second")
        await layer.group_add(group, first)
        await layer.group_add(group, second)
        await layer.group_discard(group, first)
        assert await layer.group_members(group) == [second]
