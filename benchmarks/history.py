"""What group history costs a group send, on each layer: history off against history on;
and presence joins and leaves per second.

For each layer (``memory``, ``ipc``, ``redis``), the same body in a fresh subprocess: a
10-member group (``new_channel()`` members, each with a receiver task already waiting), then
``--sends`` group sends of a small message, each followed by one ``await asyncio.sleep(0)``
as a consumer sending from its own task would; deliveries per second from the first send to
the last receive. Twice per layer and repetition, alternating: with no ``history`` option,
and with ``{"history": {"bench.*": {"size": 100}}}`` (each send also keeps the message and
trims the group's history to 100). The table gives the medians and the cost of a send with
history over one without (the issue's goal: at most 1.3x).

**presence**: *sends* join-and-leave pairs on one group (``group_add(group, channel,
presence={"user": n, "name": ...})`` then ``group_discard``), one after the other; pairs per
second.

A layer without the history or presence extension is reported as such. The Redis layer
runs against a ``redis-server`` this script starts on a free port of 127.0.0.1 (persistence
off); the IPC layer in a fresh temporary directory per run.

Usage::

    python benchmarks/history.py                        # every layer, 5 runs each, a table
    python benchmarks/history.py --layer memory --repeat 3 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import argument_parser, report, run_json

HERE = Path(__file__).resolve().parent
LAYERS = ("memory", "ipc", "redis")
MODES = ("off", "on", "presence")
MEMBERS = 10
HISTORY = {"bench.*": {"size": 100}}
MESSAGE = {"type": "chat.message", "text": "hello, world", "n": 0}
RUN_TIMEOUT = 600


def build_layer(which: str, history: bool, redis_url: str | None, path: str | None):
    """The layer to measure, with or without the history option."""
    config = {"history": HISTORY} if history else {}
    if which == "memory":
        from channels_memory import InMemoryChannelLayer

        return InMemoryChannelLayer(capacity=10_000, **config)
    if which == "ipc":
        from channels_ipc import IPCChannelLayer

        return IPCChannelLayer(path=path, capacity=10_000, **config)
    from channels_redis import RedisChannelLayer

    return RedisChannelLayer(hosts=[redis_url], capacity=10_000, **config)


async def measure_presence(which: str, pairs: int, redis_url: str | None) -> dict:
    """Join-and-leave pairs per second on one group."""
    path = tempfile.mkdtemp(prefix="channels-bench-presence-") if which == "ipc" else None
    try:
        layer = build_layer(which, False, redis_url, path)
        group = f"bench.presence.{time.monotonic_ns()}"
        channels = [f"bench.member.{n}" for n in range(pairs)]
        started = time.perf_counter()
        for n, channel in enumerate(channels):
            await layer.group_add(group, channel, presence={"user": n, "name": f"user {n}"})
            await layer.group_discard(group, channel)
        elapsed = time.perf_counter() - started
        left = await layer.group_presence(group)
        await layer.close()
    finally:
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
    if left:
        raise RuntimeError(f"{which}: {len(left)} members still present after leaving")
    return {"sends_per_second": pairs / elapsed}


async def measure(which: str, history: bool, sends: int, redis_url: str | None) -> dict:
    """Deliveries per second of *sends* group sends to a 10-member group."""
    path = tempfile.mkdtemp(prefix="channels-bench-history-") if which == "ipc" else None
    try:
        layer = build_layer(which, history, redis_url, path)
        group = f"bench.{time.monotonic_ns()}"
        expected = sends * MEMBERS
        received = 0
        done = asyncio.get_running_loop().create_future()

        async def member(channel: str) -> None:
            nonlocal received
            for _ in range(sends):
                await layer.receive(channel)
                received += 1
                if received == expected and not done.done():
                    done.set_result(None)

        channels = [await layer.new_channel("bench") for _ in range(MEMBERS)]
        for channel in channels:
            await layer.group_add(group, channel)
        tasks = [asyncio.ensure_future(member(channel)) for channel in channels]
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        positions = 0
        for n in range(sends):
            if await layer.group_send(group, {**MESSAGE, "n": n}) is not None:
                positions += 1
            await asyncio.sleep(0)
        await asyncio.wait_for(done, RUN_TIMEOUT)
        elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        kept = len((await layer.group_history(group)).messages) if history else 0
        await layer.close()
    finally:
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
    if history and (positions != sends or kept != min(sends, HISTORY["bench.*"]["size"])):
        raise RuntimeError(f"{which}: {positions} positions and {kept} kept for {sends} sends")
    return {"deliveries_per_second": expected / elapsed, "sends_per_second": sends / elapsed}


def supports_history(which: str) -> bool:
    """Whether the layer has the history extension."""
    if which == "memory":
        from channels_memory import InMemoryChannelLayer as layer
    elif which == "ipc":
        from channels_ipc import IPCChannelLayer as layer
    else:
        from channels_redis import RedisChannelLayer as layer
    return {"history", "presence"} <= set(layer.extensions)


def compare(args: argparse.Namespace) -> dict:
    """Every layer, history off then on, *repeat* times, alternating; medians and ratios."""
    runs: dict = {which: {mode: [] for mode in MODES} for which in args.layer}
    unavailable: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        redis_url = None
        if "redis" in args.layer:
            from channels_core.testing.redis import running_redis

            redis_url = stack.enter_context(running_redis())
        for which in args.layer:
            if not supports_history(which):
                unavailable[which] = "no history or presence extension"
        for repetition in range(args.repeat):
            for which in args.layer:
                if which in unavailable:
                    continue
                for mode in MODES:
                    print(f"run {repetition + 1}: {which} history {mode}", file=sys.stderr)
                    command = [sys.executable, str(Path(__file__).resolve()), "--run", which]
                    command += ["--mode", mode, "--sends", str(args.sends)]
                    if redis_url:
                        command += ["--redis", redis_url]
                    runs[which][mode].append(
                        run_json(command, f"The {which} run", RUN_TIMEOUT)["sends_per_second"]
                    )
    median = {
        which: {mode: statistics.median(values) for mode, values in by_mode.items() if values}
        for which, by_mode in runs.items()
        if which not in unavailable
    }
    # The cost of a send with history over one without: time per send, on over off.
    cost = {which: medians["off"] / medians["on"] for which, medians in median.items()}
    return {
        "repeat": args.repeat,
        "sends": args.sends,
        "members": MEMBERS,
        "runs": runs,
        "median": median,
        "cost": cost,
        "unavailable": unavailable,
    }


def print_table(result: dict) -> None:
    """Sends per second with history off and on, and the cost ratio, per layer."""
    print(
        f"medians of {result['repeat']} runs each; {result['sends']} group sends to "
        f"{result['members']} members; history keeps the last 100"
    )
    print(
        f"{'layer':<10}{'off, sends/s':>15}{'on, sends/s':>15}{'cost on/off':>13}{'goal':>8}"
        f"{'presence join+leave/s':>24}"
    )
    for which, medians in result["median"].items():
        print(
            f"{which:<10}{medians['off']:>15,.0f}{medians['on']:>15,.0f}"
            f"{result['cost'][which]:>12.2f}x{'1.3x':>8}{medians['presence']:>24,.0f}"
        )
    for which, why in result["unavailable"].items():
        print(f"{which:<10}not measured: {why}")


def main() -> None:
    """Parse the command line; run one measurement (``--run``) or the comparison."""
    parser = argument_parser(__doc__, repeat=5)
    parser.add_argument("--layer", action="append", choices=LAYERS)
    parser.add_argument("--sends", type=int, default=3000, help="group sends per run (3000)")
    parser.add_argument("--run", choices=LAYERS, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        import json

        if args.mode == "presence":
            result = asyncio.run(measure_presence(args.run, args.sends, args.redis))
        else:
            result = asyncio.run(measure(args.run, args.mode == "on", args.sends, args.redis))
        print(json.dumps(result))
        return
    args.layer = args.layer or list(LAYERS)
    report(compare(args), args.json, print_table, keep=HERE / "results" / "history.json")


if __name__ == "__main__":
    main()
