"""The IPC layer beside our Redis layer, on this machine, in one run.

Two measurements, with the same benchmark body for both layers:

- **pairs**: a sender process and a receiver process on one channel, 20,000 messages; send
  to receive pairs per second, from the sender's first send to the receiver's last receive
  (both read ``time.perf_counter``, the machine's monotonic clock). Both layers keep their
  default capacity (100); the sender retries after ``await asyncio.sleep(0.0005)`` on
  ChannelFull.
- **fan-out**: in one process, 100 group sends to a 1,000-member group (members are
  ``new_channel()`` reply channels, each with its own receiver task already waiting);
  deliveries per second (100,000 deliveries) from the first ``group_send`` to the last receive.
  The sender yields once after each group send.

Usage::

    python benchmarks/layer_ipc.py                  # both layers, 3 runs each, a table
    python benchmarks/layer_ipc.py --repeat 5 --json

The Redis layer talks to a ``redis-server`` started for the run on a free loopback port
(persistence off); the IPC layer uses a fresh temporary directory per run. The runs of the two
layers alternate, and the figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import argument_parser, child_env, layer_table, medians, report

RUN_TIMEOUT = 300
MESSAGE = {"type": "chat.message", "text": "hello, world", "n": 0}
CHANNEL = "bench.pairs"


def make_layer(which: str, where: str):
    """A layer of kind *which* on *where* (a directory for ipc, a URL for redis)."""
    if which == "ipc":
        from channels_ipc import IPCChannelLayer

        return IPCChannelLayer(path=where)
    from channels_redis import RedisChannelLayer

    return RedisChannelLayer(hosts=[where], prefix="bench:")


async def receive_pairs(which: str, where: str, messages: int) -> None:
    """The receiver process: print ``ready``, take *messages*, print the last one's time."""
    layer = make_layer(which, where)
    first = asyncio.ensure_future(layer.receive(CHANNEL))
    await asyncio.sleep(0.05)
    print("ready", flush=True)
    await asyncio.wait_for(first, RUN_TIMEOUT)
    for _ in range(messages - 1):
        await layer.receive(CHANNEL)
    print(f"done {time.perf_counter()!r}", flush=True)
    await layer.close()


async def send_pairs(which: str, where: str, messages: int) -> float:
    """Send *messages* on the pairs channel; the perf_counter time of the first send."""
    from channels_core.exceptions import ChannelFull

    layer = make_layer(which, where)
    started = time.perf_counter()
    for n in range(messages):
        message = {**MESSAGE, "n": n}
        while True:
            try:
                await layer.send(CHANNEL, message)
                break
            except ChannelFull:
                await asyncio.sleep(0.0005)
    await layer.close()
    return started


def measure_pairs(which: str, where: str, messages: int) -> float:
    """Pairs per second between this process (sender) and a receiver subprocess."""
    receiver = subprocess.Popen(
        [sys.executable, __file__, "--receiver", which, where, str(messages)],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert receiver.stdout.readline().strip() == "ready"
        started = asyncio.run(send_pairs(which, where, messages))
        finished = float(receiver.stdout.readline().split()[1])
        receiver.wait(RUN_TIMEOUT)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    return messages / (finished - started)


async def measure_fan_out(which: str, where: str, members: int, sends: int) -> float:
    """Group deliveries per second: *sends* group sends to *members* waiting receivers."""
    layer = make_layer(which, where)
    group = "bench-group"
    channels = [await layer.new_channel() for _ in range(members)]
    for channel in channels:
        await layer.group_add(group, channel)

    async def member(channel: str) -> None:
        for _ in range(sends):
            await layer.receive(channel)

    tasks = [asyncio.ensure_future(member(channel)) for channel in channels]
    await asyncio.sleep(0.1)  # every receiver is waiting before the clock starts
    started = time.perf_counter()
    for n in range(sends):
        await layer.group_send(group, {**MESSAGE, "n": n})
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), RUN_TIMEOUT)
    elapsed = time.perf_counter() - started
    await layer.close()
    return members * sends / elapsed


def run_once(which: str, args: argparse.Namespace, redis_url: str) -> dict:
    """One measurement of each kind for one layer, each on a fresh store."""
    with tempfile.TemporaryDirectory(prefix="bench-ipc-") as directory:
        if which == "redis":
            flush_redis(redis_url)
        where = directory if which == "ipc" else redis_url
        pairs = measure_pairs(which, where, args.messages)
        if which == "redis":
            flush_redis(redis_url)
        else:
            where = str(Path(directory) / "fan-out")
        fan_out = asyncio.run(measure_fan_out(which, where, args.group_size, args.group_sends))
    return {"layer": which, "pairs_per_second": pairs, "fan_out_deliveries_per_second": fan_out}


def flush_redis(url: str) -> None:
    """Empty the benchmark's Redis database."""
    import redis

    redis.Redis.from_url(url).flushdb()


def compare(args: argparse.Namespace) -> dict:
    """Alternate runs of the two layers; medians and ratios."""
    from channels_core.testing.redis import running_redis

    runs: dict[str, list[dict]] = {"ipc": [], "redis": []}
    with running_redis() as url:
        for _ in range(args.repeat):
            for which in runs:
                runs[which].append(run_once(which, args, url))
    per_layer = {which: medians(layer_runs) for which, layer_runs in runs.items()}
    result = {"repeat": args.repeat, "runs": runs, "median": {}, "ratio": {}}
    for key in ("pairs_per_second", "fan_out_deliveries_per_second"):
        result["median"][key] = {which: per_layer[which][key] for which in runs}
        result["ratio"][key] = per_layer["ipc"][key] / per_layer["redis"][key]
    return result


def main() -> None:
    """Parse the command line and run the comparison (or one receiver process)."""
    parser = argument_parser(__doc__, repeat=3)
    parser.add_argument(
        "--receiver",
        nargs=3,
        metavar=("LAYER", "WHERE", "MESSAGES"),
        help="run the receiver process of one pairs measurement (the parent starts it)",
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--group-size", type=int, default=1_000)
    parser.add_argument("--group-sends", type=int, default=100)
    args = parser.parse_args()
    if args.receiver:
        which, where, messages = args.receiver
        asyncio.run(receive_pairs(which, where, int(messages)))
        return
    report(
        compare(args), args.json, layer_table(("ipc", "channels-ipc"), ("redis", "channels-redis"))
    )


if __name__ == "__main__":
    main()
