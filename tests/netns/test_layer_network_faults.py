"""The Redis layer over a real network link with faults: a blackhole, a slow link, a partition.

Redis runs in a network namespace of the test's own, behind a link (``channels_core.testing
.netns``) whose packets the test drops (nftables) or delays; the layer runs here, in the test
process. Skipped, saying why, where namespaces cannot be made (not root, no ``ip``, ``nft``).
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from channels_core.exceptions import LayerUnavailable
from channels_core.testing.conformance import fresh
from channels_core.testing.netns import NetworkNamespace, redis_in
from channels_redis import RedisChannelLayer

BOUND = 15.0


async def eventually(predicate, what: str) -> None:
    """Wait until *predicate()* is true, for :data:`BOUND` seconds at most."""
    try:
        async with asyncio.timeout(BOUND):
            while not predicate():  # noqa: ASYNC110 - polling what other tasks change
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"Timed out after {BOUND} s waiting for {what}.") from None


def unreachable_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "is unreachable" in r.getMessage()]


async def test_a_blackhole_is_detected_within_the_call_bound_and_the_layer_recovers(caplog):
    caplog.set_level(logging.WARNING, logger="channels_redis")
    with NetworkNamespace() as namespace, redis_in(namespace) as server:
        # Two connections for five sends: three of them wait for a free one.
        layer = RedisChannelLayer(hosts=[server.url], max_connections=2)
        waiting = None
        try:
            channel = fresh("blackholed")
            await asyncio.gather(*(layer.send(channel, {"n": n}) for n in range(3)))
            assert sorted([(await layer.receive(channel))["n"] for _ in range(3)]) == [0, 1, 2]
            waiting = asyncio.ensure_future(layer.receive(channel))
            await asyncio.sleep(0.2)  # its BLPOP is on the wire

            namespace.blackhole()
            sends = [layer.send(channel, {"n": n}) for n in range(5)]
            async with asyncio.timeout(BOUND):
                results = await asyncio.gather(*sends, return_exceptions=True)
            assert all(isinstance(result, LayerUnavailable) for result in results), results
            for result in results:
                # "no answer within 6 s", or a connect timeout for a call on a new connection.
                assert f"Redis at {server.url} is unreachable" in str(result)
            # Once detected, a call fails at once (the breaker is open): no other 6 s wait.
            with pytest.raises(LayerUnavailable, match="unreachable"):
                await asyncio.wait_for(layer.group_send(fresh("group"), {"n": 1}), 1)
            assert len(unreachable_logs(caplog)) == 1
            assert not waiting.done()

            namespace.heal()
            async with asyncio.timeout(BOUND):
                while True:
                    try:
                        await layer.send(channel, {"n": "after"})
                        break
                    except LayerUnavailable:
                        await asyncio.sleep(0.05)
            # A send that timed out may still reach Redis when the link heals (TCP retransmits
            # what it had written), so it can come before the one sent after the heal.
            late = [(await asyncio.wait_for(waiting, BOUND))["n"]]
            while late[-1] != "after":
                late.append((await asyncio.wait_for(layer.receive(channel), BOUND))["n"])
            assert set(late[:-1]) <= set(range(5)), late
        finally:
            await layer.close()
            if waiting is not None:
                await asyncio.gather(waiting, return_exceptions=True)


async def test_everything_works_over_a_link_100_ms_slower():
    with NetworkNamespace(delay=0.05) as namespace, redis_in(namespace) as server:
        layer = RedisChannelLayer(hosts=[server.url])
        try:
            channel = fresh("slow")
            await layer.send(channel, {"n": 0})  # connects
            started = time.monotonic()
            await layer.send(channel, {"n": 1})
            round_trip = time.monotonic() - started
            # The link really is slow: a send is one round trip.
            assert round_trip >= 0.1, round_trip
            assert [(await layer.receive(channel))["n"] for _ in range(2)] == [0, 1]

            group = fresh("slow-group")
            members = [await layer.new_channel() for _ in range(3)]
            for member in members:
                await layer.group_add(group, member)
            await layer.group_send(group, {"text": "to all"})
            prefix = layer.process_prefix()
            got = {}
            async with asyncio.timeout(BOUND):
                while len(got) < 3:
                    member, message = await layer.receive_prefix(prefix)
                    got[member] = message
            assert got == {member: {"text": "to all"} for member in members}
        finally:
            await layer.close()


async def test_no_accepted_message_is_lost_across_a_partition_that_heals():
    with NetworkNamespace() as namespace, redis_in(namespace) as server:
        sender = RedisChannelLayer(hosts=[server.url])
        receiver = RedisChannelLayer(hosts=[server.url])
        channel, accepted, received, refused = fresh("partitioned"), [], [], set()

        async def send_numbered(stop: asyncio.Event) -> None:
            number = 0
            while not stop.is_set():
                try:
                    await sender.send(channel, {"n": number})
                except LayerUnavailable:
                    refused.add(number)
                    await asyncio.sleep(0.05)
                    continue  # the same number again: nothing is skipped
                accepted.append(number)
                number += 1
                await asyncio.sleep(0.01)

        async def receive_all() -> None:
            while True:
                received.append((await receiver.receive(channel))["n"])

        stop = asyncio.Event()
        sending = asyncio.ensure_future(send_numbered(stop))
        receiving = asyncio.ensure_future(receive_all())
        try:
            await asyncio.sleep(0.5)
            namespace.blackhole()
            await asyncio.sleep(0.5)
            cut_at = len(accepted)
            await asyncio.sleep(4.5)
            healed_at = len(accepted)
            namespace.heal()
            await eventually(lambda: len(accepted) >= healed_at + 20, "sends after the heal")
            stop.set()
            await asyncio.wait_for(sending, BOUND)
            await eventually(lambda: set(accepted) <= set(received), "every accepted message")
            assert cut_at == healed_at, "messages were accepted through the partition"
            # Nothing accepted is lost: a send in flight when the link was cut either gets
            # through when it heals (TCP sends it again) or, past the 6 s call bound, is
            # refused and sent again under the same number; only such a number may come
            # twice (when Redis had run it and only its reply was lost).
            twice = {n for n in received if received.count(n) > 1}
            assert twice <= refused, twice
            assert sorted(set(received)) == accepted
        finally:
            receiving.cancel()
            await asyncio.gather(receiving, return_exceptions=True)
            await sender.close()
            await receiver.close()
