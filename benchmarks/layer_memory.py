"""The memory layer beside Django Channels 4.3's ``InMemoryChannelLayer``, in one run.

Two measurements, with the same benchmark body for both layers:

- **pairs**: one sender task and one receiver task on one channel, 20,000 messages; send to
  receive pairs per second, from the first send to the last receive. Both layers keep their
  default capacity (100); the sender retries after ``await asyncio.sleep(0)`` on ChannelFull.
- **fan-out**: 100 group sends to a 1,000-member group (members are ``new_channel()`` reply
  channels, each with its own receiver task already waiting); deliveries per second
  (100,000 deliveries) from the first ``group_send`` to the last receive. The sender yields
  once after each group send, as a consumer sending from its own task would.

Usage::

    python benchmarks/layer_memory.py                 # both layers, 5 runs each, a table
    python benchmarks/layer_memory.py --repeat 3 --json
    python benchmarks/layer_memory.py --run ours --json   # one run of one layer

The parent runs each measurement in a fresh subprocess, alternating the two layers: ours under
this interpreter, Django Channels under ``benchmarks/.venv-channels43/`` (made with
``python -m venv`` and ``pip install 'channels==4.3.*'`` when missing). Both use the default
asyncio event loop. The figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from _common import argument_parser, child_env, layer_table, peer_venv, report, run_json

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".venv-channels43"
PEER_REQUIREMENTS = ["channels==4.3.*"]
RUN_TIMEOUT = 600
MESSAGE = {"type": "chat.message", "text": "hello, world", "n": 0}


def load_layer(which: str):
    """The layer to measure and its ChannelFull exception."""
    if which == "ours":
        from channels_core.exceptions import ChannelFull
        from channels_memory import InMemoryChannelLayer
    else:
        from channels.exceptions import ChannelFull
        from channels.layers import InMemoryChannelLayer
    return InMemoryChannelLayer(), ChannelFull


async def measure_pairs(which: str, messages: int) -> float:
    """Send-to-receive pairs per second on one channel."""
    layer, channel_full = load_layer(which)
    channel = "bench.pairs"

    async def sender() -> None:
        for n in range(messages):
            message = {**MESSAGE, "n": n}
            while True:
                try:
                    await layer.send(channel, message)
                    break
                except channel_full:
                    await asyncio.sleep(0)

    async def receiver() -> None:
        for _ in range(messages):
            await layer.receive(channel)

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(receiver(), sender()), RUN_TIMEOUT)
    elapsed = time.perf_counter() - started
    await layer.close()
    return messages / elapsed


async def measure_fan_out(which: str, members: int, sends: int) -> float:
    """Group deliveries per second: *sends* group sends to *members* waiting receivers."""
    layer, _ = load_layer(which)
    group = "bench-group"
    channels = [await layer.new_channel() for _ in range(members)]
    for channel in channels:
        await layer.group_add(group, channel)

    async def member(channel: str) -> None:
        for _ in range(sends):
            await layer.receive(channel)

    tasks = [asyncio.ensure_future(member(channel)) for channel in channels]
    await asyncio.sleep(0.05)  # every receiver is waiting before the clock starts
    started = time.perf_counter()
    for n in range(sends):
        await layer.group_send(group, {**MESSAGE, "n": n})
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), RUN_TIMEOUT)
    elapsed = time.perf_counter() - started
    await layer.close()
    return members * sends / elapsed


def run_once(which: str, args: argparse.Namespace) -> dict:
    """One measurement of each kind for one layer, in this process."""
    pairs = asyncio.run(measure_pairs(which, args.messages))
    fan_out = asyncio.run(measure_fan_out(which, args.group_size, args.group_sends))
    return {
        "layer": which,
        "python": sys.version.split()[0],
        "pairs_per_second": pairs,
        "fan_out_deliveries_per_second": fan_out,
    }


def run_child(which: str, python: Path, args: argparse.Namespace) -> dict:
    """Run one measurement in a fresh subprocess and return its figures."""
    command = [
        str(python),
        str(Path(__file__).resolve()),
        "--run",
        which,
        "--json",
        "--messages",
        str(args.messages),
        "--group-size",
        str(args.group_size),
        "--group-sends",
        str(args.group_sends),
    ]
    # The peer's interpreter must not import this repository's packages, nor ours the peer's.
    return run_json(command, f"The {which} run", RUN_TIMEOUT, env=child_env())


def compare(args: argparse.Namespace) -> dict:
    """Run both layers *repeat* times, alternating, and return the medians and ratios."""
    pythons = {
        "ours": Path(sys.executable),
        "peer": peer_venv(PEER_VENV, PEER_REQUIREMENTS) / "python",
    }
    runs: dict[str, list[dict]] = {"ours": [], "peer": []}
    for _ in range(args.repeat):
        for which in ("ours", "peer"):
            runs[which].append(run_child(which, pythons[which], args))
    result = {"repeat": args.repeat, "runs": runs, "median": {}, "ratio": {}}
    for key in ("pairs_per_second", "fan_out_deliveries_per_second"):
        medians = {which: statistics.median(run[key] for run in runs[which]) for which in runs}
        result["median"][key] = medians
        result["ratio"][key] = medians["ours"] / medians["peer"]
    return result


def main() -> None:
    """Parse the command line and run one layer or the comparison."""
    parser = argument_parser(__doc__, repeat=5)
    parser.add_argument("--run", choices=["ours", "peer"], help="run one layer, in-process")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--group-size", type=int, default=1_000)
    parser.add_argument("--group-sends", type=int, default=100)
    args = parser.parse_args()
    if args.run:
        result = run_once(args.run, args)
        print(json.dumps(result) if args.json else result)
        return
    report(
        compare(args), args.json, layer_table(("ours", "channels-memory"), ("peer", "channels 4.3"))
    )


if __name__ == "__main__":
    main()
