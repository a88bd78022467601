"""The Redis layer over a faulty network: a blackhole, a healed partition, a slow link.

Redis runs in a network namespace behind a link this script builds and breaks
(``channels_core.testing.netns``: TUN devices joined by a forwarding process that can delay
every packet, nftables rules that drop them); the layer runs in this process. It needs root
(CAP_NET_ADMIN), ``ip`` (iproute2) and ``nft`` (nftables). Three sections:

- **blackhole**: a layer with open connections; every packet to and from Redis dropped. The
  time until a send raises ``LayerUnavailable`` (the first caller waits for the layer's call
  bound), and how long the next send takes to fail (the breaker is open by then).
- **partition**: *senders* tasks each send numbered messages (one every 10 ms) to a channel
  of their own, through a partition of ``--partition`` seconds that heals; a send refused
  with ``LayerUnavailable`` is sent again under the same number (what the server's outage
  buffer does in worker mode), a receiver layer takes everything. Messages accepted (a send
  returned) and never received are lost; a number received twice is a duplicate.
- **slow link**: *pairs* tasks each make round trips (send a message, receive it back on the
  same channel) for ``--seconds``, on the link without delay and with ``--delay`` seconds
  added in each direction (0.05: every round trip 100 ms longer): round trips per second.

Usage::

    python benchmarks/network_faults.py                 # every section, 3 runs each, a table
    python benchmarks/network_faults.py --section partition --repeat 1 --json
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from _common import argument_parser, medians, report

from channels_core.exceptions import LayerUnavailable
from channels_core.testing.netns import NetworkNamespace, redis_in
from channels_redis import RedisChannelLayer

HERE = Path(__file__).resolve().parent
SECTIONS = ("blackhole", "partition", "slow link")
BOUND = 60.0


async def poll(predicate, within: float = BOUND) -> None:
    """Wait until *predicate()* is true, or *within* seconds."""
    deadline = time.monotonic() + within
    while not predicate() and time.monotonic() < deadline:  # noqa: ASYNC110 - other tasks
        await asyncio.sleep(0.01)


async def blackhole() -> dict:
    """One run of the blackhole section."""
    with NetworkNamespace() as namespace, redis_in(namespace) as server:
        layer = RedisChannelLayer(hosts=[server.url])
        try:
            await asyncio.gather(*(layer.send(f"warm{n}", {"n": n}) for n in range(10)))
            namespace.blackhole()
            started = time.monotonic()
            try:
                await asyncio.wait_for(layer.send("blackholed", {"n": 1}), BOUND)
                raise RuntimeError("A send went through a blackhole.")
            except LayerUnavailable:
                detected = time.monotonic() - started
            started = time.monotonic()
            try:
                await asyncio.wait_for(layer.send("blackholed", {"n": 2}), BOUND)
            except LayerUnavailable:
                next_fails = time.monotonic() - started
        finally:
            await layer.close()
    return {"detect_seconds": detected, "next_send_fails_ms": next_fails * 1000}


async def partition(senders: int, seconds: float) -> dict:
    """One run of the partition section."""
    with NetworkNamespace() as namespace, redis_in(namespace) as server:
        sender = RedisChannelLayer(hosts=[server.url])
        receiver = RedisChannelLayer(hosts=[server.url])
        accepted: list[list[int]] = [[] for _ in range(senders)]
        received: list[list[int]] = [[] for _ in range(senders)]
        refused = 0
        stop = asyncio.Event()

        async def send(index: int) -> None:
            nonlocal refused
            number = 0
            while not stop.is_set():
                try:
                    await sender.send(f"part{index}", {"n": number})
                except LayerUnavailable:
                    refused += 1
                    await asyncio.sleep(0.05)
                    continue
                accepted[index].append(number)
                number += 1
                await asyncio.sleep(0.01)

        async def receive(index: int) -> None:
            while True:
                received[index].append((await receiver.receive(f"part{index}"))["n"])

        sending = [asyncio.ensure_future(send(index)) for index in range(senders)]
        receiving = [asyncio.ensure_future(receive(index)) for index in range(senders)]
        try:
            await asyncio.sleep(1)
            namespace.blackhole()
            await asyncio.sleep(seconds)
            namespace.heal()
            healed = time.monotonic()
            # Until every sender has had a message accepted since the heal.
            counts = [len(numbers) for numbers in accepted]
            await poll(
                lambda: all(
                    len(numbers) > count for numbers, count in zip(accepted, counts, strict=True)
                )
            )
            recovered = time.monotonic() - healed
            await asyncio.sleep(1)
            stop.set()
            await asyncio.gather(*sending)
            await poll(
                lambda: all(set(a) <= set(r) for a, r in zip(accepted, received, strict=True)),
                within=10,
            )
        finally:
            for task in receiving:
                task.cancel()
            await asyncio.gather(*receiving, return_exceptions=True)
            await sender.close()
            await receiver.close()
    return {
        "accepted": sum(map(len, accepted)),
        "lost": sum(len(set(a) - set(r)) for a, r in zip(accepted, received, strict=True)),
        "duplicated": sum(len(r) - len(set(r)) for r in received),
        "refused_sends": refused,
        "seconds_to_recover": recovered,
    }


async def slow_link(delay: float, pairs: int, seconds: float) -> dict:
    """One run of the slow-link section, on a link with *delay* added each way."""
    with NetworkNamespace(delay=delay) as namespace, redis_in(namespace) as server:
        layer = RedisChannelLayer(hosts=[server.url])
        done = 0
        stop = asyncio.Event()

        async def round_trips(index: int) -> None:
            nonlocal done
            channel = f"trip{index}"
            while not stop.is_set():
                await layer.send(channel, {"n": done})
                await layer.receive(channel)
                done += 1

        try:
            await asyncio.gather(*(layer.send(f"warm{n}", {}) for n in range(pairs)))
            tasks = [asyncio.ensure_future(round_trips(index)) for index in range(pairs)]
            started_count, started = done, time.monotonic()
            await asyncio.sleep(seconds)
            rate = (done - started_count) / (time.monotonic() - started)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
        finally:
            await layer.close()
    return {"round_trips_per_second": rate}


def print_table(result: dict) -> None:
    """Every section run, as a table of medians."""
    print(f"medians of {result['repeat']} runs")
    if "blackhole" in result:
        found = result["blackhole"]["median"]
        print("blackhole (packets dropped both ways):")
        print(f"  a send raises LayerUnavailable after   {found['detect_seconds']:8.2f} s")
        print(f"  the next send fails after              {found['next_send_fails_ms']:8.2f} ms")
    if "partition" in result:
        found = result["partition"]["median"]
        print(
            f"partition of {result['partition']['seconds']:g} s that heals, "
            f"{result['partition']['senders']} senders:"
        )
        for label, key in (
            ("messages accepted", "accepted"),
            ("accepted and lost", "lost"),
            ("received twice", "duplicated"),
            ("sends refused (sent again)", "refused_sends"),
        ):
            print(f"  {label:<37}{found[key]:8.0f}")
        print(f"  all senders through again after       {found['seconds_to_recover']:8.2f} s")
    if "slow link" in result:
        section = result["slow link"]
        print(f"slow link, {section['pairs']} tasks making round trips (send, then receive):")
        for label, key in (("no delay", "no_delay"), (section["label"], "delayed")):
            rate = section["median"][key]["round_trips_per_second"]
            print(f"  {label:<37}{rate:8.0f} round trips/s")


def main() -> None:
    """Parse the command line, run the sections asked for, report."""
    parser = argument_parser(__doc__, repeat=3)
    parser.add_argument("--section", action="append", choices=SECTIONS)
    parser.add_argument("--partition", type=float, default=5.0, help="partition, s (5)")
    parser.add_argument("--senders", type=int, default=10, help="partition senders (10)")
    parser.add_argument("--delay", type=float, default=0.05, help="slow link, s each way")
    parser.add_argument("--pairs", type=int, default=50, help="slow link tasks (50)")
    parser.add_argument("--seconds", type=float, default=5.0, help="slow link run, s (5)")
    args = parser.parse_args()
    sections = args.section or list(SECTIONS)
    result: dict = {"repeat": args.repeat}
    if "blackhole" in sections:
        runs = []
        for repetition in range(args.repeat):
            print(f"run {repetition + 1}: blackhole", file=sys.stderr)
            runs.append(asyncio.run(blackhole()))
        result["blackhole"] = {"runs": runs, "median": medians(runs)}
    if "partition" in sections:
        runs = []
        for repetition in range(args.repeat):
            print(f"run {repetition + 1}: partition", file=sys.stderr)
            runs.append(asyncio.run(partition(args.senders, args.partition)))
        result["partition"] = {
            "seconds": args.partition,
            "senders": args.senders,
            "runs": runs,
            "median": medians(runs),
        }
    if "slow link" in sections:
        runs = {"no_delay": [], "delayed": []}
        for repetition in range(args.repeat):
            for key, delay in (("no_delay", 0.0), ("delayed", args.delay)):
                print(f"run {repetition + 1}: slow link, {delay:g} s each way", file=sys.stderr)
                runs[key].append(asyncio.run(slow_link(delay, args.pairs, args.seconds)))
        result["slow link"] = {
            "delay_each_way": args.delay,
            "label": f"{args.delay * 2000:g} ms more per round trip",
            "pairs": args.pairs,
            "runs": runs,
            "median": {key: medians(found) for key, found in runs.items()},
        }
    report(result, args.json, print_table, keep=HERE / "results" / "network_faults.json")


if __name__ == "__main__":
    main()
