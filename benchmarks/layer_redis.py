"""The Redis layer beside channels_redis 4.3 (its core and its pub/sub layer), in one run.

Everything runs against one ``redis-server`` that this script starts on a free port of
127.0.0.1 (persistence off, pinned to CPU 1) and flushes before every measurement. Four
sections, each on ours, channels_redis's ``core.RedisChannelLayer`` ("core") and its
``pubsub.RedisPubSubChannelLayer`` ("pubsub"), alternating:

- **pairs**: one sender task and one receiver task on one channel; send-to-receive pairs per
  second, from the first send to the last receive (20,000 messages for ours and pubsub,
  5,000 for the slower core layer).
- **fanout**: 100 group sends to a 1,000-member group (``new_channel()`` channels of one
  process, each with its receiver task already waiting); deliveries per second, and the
  p50/p99 latency from each group send to each receive.
- **ceiling**: ``redis-benchmark`` on the same server: LPUSH, LPOP and EVALSHA (a one-RPUSH
  script), unpipelined and with ``-P 16`` from 50 connections, and unpipelined from one
  connection (the round-trip rate one task awaiting each command can reach).
- **broadcast**: 1,000 WebSocket clients connected to one server, all in one group, receive
  100 broadcasts that another process sends with ``group_send``; deliveries per second and
  p50/p99 latency (each broadcast carries its send time). Ours is ``channels serve``
  (in-process mode, the Redis layer); the peers are Daphne serving Django Channels 4.3 with
  channels_redis 4.3. The server runs on CPU 0; the clients (``loadgen/ws_broadcast.py``),
  the sender and Redis on CPU 1.

Usage::

    python benchmarks/layer_redis.py                      # everything, 3 runs, medians, a table
    python benchmarks/layer_redis.py --runs 5 --json      # JSON with every run (always kept
                                                          # in benchmarks/results/layer_redis.json)
    python benchmarks/layer_redis.py --only pairs --only fanout --layer ours
    python benchmarks/layer_redis.py --run pairs --layer ours --redis redis://127.0.0.1:6390/0 \\
        --profile                                         # one run in-process, cProfile on stderr

The peers are installed by this script into ``benchmarks/.venv-channels-redis43/``
(``pip install 'channels-redis==4.3.*' 'channels==4.3.*' daphne hiredis``) and only ever run
under that virtualenv's interpreter: our distribution is also called ``channels-redis``. This
module imports nothing but the standard library at the top, so both interpreters can run it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from _common import (
    argument_parser,
    channels_serve,
    medians,
    peer_venv,
    percentile,
    report,
    run_json,
)

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
BROADCAST_LOADGEN = HERE / "loadgen" / "ws_broadcast.py"
RESULTS = HERE / "results"
PEER_VENV = HERE / ".venv-channels-redis43"
PEER_REQUIREMENTS = ["channels-redis==4.3.*", "channels==4.3.*", "daphne", "hiredis"]
LAYERS = ("ours", "core", "pubsub")
SECTIONS = ("pairs", "fanout", "ceiling", "broadcast")
# The process being measured (layer client, WebSocket server) on CPU 0; Redis, the load
# generator and the broadcast sender on CPU 1.
MEASURED_CPU, REDIS_CPU = "0", "1"
START_TIMEOUT = 60
# Opening handshakes in flight at once. Each makes the server add the connection to the group;
# at 100 our layer ran out of redis-py's default pool of 100 connections (MaxConnectionsError).
HANDSHAKE_CONCURRENCY = 50
MESSAGE = {"type": "chat.message", "text": "hello, world", "n": 0}
GROUP = "bench"
# Goals for ours, from the issue.
GOALS = {"pairs": 25_000, "fanout": 250_000, "broadcast": 25_000}


# The measurements, run in a child process under the layer's own interpreter ---------------


def make_layer(which: str, url: str) -> tuple[object, type[Exception]]:
    """The layer to measure and its ChannelFull exception (ours, or a channels_redis 4.3 one)."""
    if which == "ours":
        try:
            from channels_core.exceptions import ChannelFull
            from channels_redis.layer import RedisChannelLayer
        except ImportError as error:
            raise SystemExit(
                f"Our Redis layer does not import here ({error}): run --layer ours under the "
                "project's interpreter (/work/venv/bin/python), not the peer's virtualenv."
            ) from error
        return RedisChannelLayer(hosts=[url]), ChannelFull
    try:
        from channels.exceptions import ChannelFull

        from channels_redis.core import RedisChannelLayer
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError as error:
        raise SystemExit(
            f"channels_redis 4.3 does not import here ({error}): run --layer {which} under "
            f"{PEER_VENV / 'bin' / 'python'}."
        ) from error
    layer_class = RedisChannelLayer if which == "core" else RedisPubSubChannelLayer
    return layer_class(hosts=[url]), ChannelFull


async def close_layer(which: str, layer: object) -> None:
    """Close the layer's connections the way each one offers."""
    if which == "ours":
        await layer.close()
    elif which == "core":
        await layer.close_pools()
    else:
        await layer.flush()  # the pub/sub layer's flush closes its connections


async def wait_for_count(count: Callable[[], int], total: int, idle: float, budget: float) -> bool:
    """Wait until ``count()`` reaches *total*: False when it stalls *idle* s or *budget* ends."""
    started = progress_at = time.monotonic()
    seen = count()
    while seen < total:
        await asyncio.sleep(0.05)
        now = time.monotonic()
        if count() != seen:
            seen, progress_at = count(), now
        elif now - progress_at > idle or now - started > budget:
            return False
    return True


async def measure_pairs(which: str, url: str, messages: int, budget: float) -> dict:
    """Send-to-receive pairs per second on one channel, one sender and one receiver task."""
    layer, channel_full = make_layer(which, url)
    channel = "bench.pairs"
    state = {"received": 0, "last": 0.0, "full_retries": 0}
    warm = asyncio.Event()

    async def receiver() -> None:
        while state["received"] < messages:
            message = await layer.receive(channel)
            if "warm" in message:
                warm.set()
                continue
            state["received"] += 1
            state["last"] = time.perf_counter()

    async def send(message: dict) -> None:
        while True:
            try:
                await layer.send(channel, message)
                return
            except channel_full:
                state["full_retries"] += 1
                await asyncio.sleep(0)

    async def sender() -> None:
        for n in range(messages):
            await send({**MESSAGE, "n": n})

    receiving = asyncio.ensure_future(receiver())
    # Warm-up: the receiver is listening (the pub/sub layer has subscribed, which it does on
    # the first receive; a message published before that is lost) before the clock starts.
    for _ in range(100):
        await send({**MESSAGE, "warm": True})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(warm.wait(), 0.1)
            break
    else:
        raise SystemExit(f"The {which} layer's receiver got no warm-up message in 10 s.")
    started = time.perf_counter()
    sending = asyncio.ensure_future(sender())
    complete = await wait_for_count(lambda: state["received"], messages, 10.0, budget)
    for task in (sending, receiving):
        task.cancel()
    await asyncio.gather(sending, receiving, return_exceptions=True)
    await close_layer(which, layer)
    elapsed = (state["last"] or time.perf_counter()) - started
    return {
        "messages": messages,
        "received": state["received"],
        "complete": complete,
        "pairs_per_second": state["received"] / elapsed,
        "full_retries": state["full_retries"],
    }


async def measure_fanout(which: str, url: str, members: int, sends: int, budget: float) -> dict:
    """Group deliveries per second and latency: *sends* group sends to *members* receivers."""
    layer, _ = make_layer(which, url)
    channels = [await layer.new_channel() for _ in range(members)]
    for channel in channels:
        await layer.group_add(GROUP, channel)
    latencies: list[float] = []
    state = {"last": 0.0}

    async def member(channel: str) -> None:
        for _ in range(sends):
            message = await layer.receive(channel)
            now = time.perf_counter()
            latencies.append(now - message["sent"])
            state["last"] = now

    tasks = [asyncio.ensure_future(member(channel)) for channel in channels]
    await asyncio.sleep(0.2)  # every receiver is waiting before the clock starts
    started = time.perf_counter()
    for n in range(sends):
        await layer.group_send(GROUP, {**MESSAGE, "n": n, "sent": time.perf_counter()})
        # As a consumer sending from its own task would: receivers may run between sends.
        await asyncio.sleep(0)
    sent = time.perf_counter() - started
    complete = await wait_for_count(lambda: len(latencies), members * sends, 10.0, budget)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await close_layer(which, layer)
    elapsed = (state["last"] or time.perf_counter()) - started
    return {
        "expected": members * sends,
        "delivered": len(latencies),
        "complete": complete,
        "deliveries_per_second": len(latencies) / elapsed,
        "latency_p50_ms": percentile(latencies, 0.50) * 1e3,
        "latency_p99_ms": percentile(latencies, 0.99) * 1e3,
        "group_sends_seconds": sent,
    }


async def send_broadcasts(which: str, url: str, count: int) -> dict:
    """*count* group sends to the WebSocket clients' group, each stamped with its send time."""
    layer, _ = make_layer(which, url)
    started = time.perf_counter()
    for n in range(count):
        text = f"{n} {time.monotonic():.6f}"
        # Ours hands a reply-channel message straight to the socket; Channels 4.3 routes
        # the event to the consumer's handler by its type.
        message = {"text": text} if which == "ours" else {"type": "broadcast.message", "text": text}
        await layer.group_send(GROUP, message)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    await close_layer(which, layer)
    return {"broadcasts": count, "seconds": elapsed}


def run_child(args: argparse.Namespace) -> dict:
    """One measurement of one layer in this process (``--run``)."""
    if args.run == "pairs":
        coroutine = measure_pairs(args.layer[0], args.redis, args.messages, args.budget)
    elif args.run == "fanout":
        coroutine = measure_fanout(
            args.layer[0], args.redis, args.group_size, args.group_sends, args.budget
        )
    else:
        coroutine = send_broadcasts(args.layer[0], args.redis, args.group_sends)
    if not args.profile:
        return asyncio.run(coroutine)
    import cProfile
    import pstats

    profile = cProfile.Profile()
    result = profile.runcall(asyncio.run, coroutine)
    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    return result


# The parent: Redis, the peers' virtualenv, children, redis-benchmark, WebSocket servers ----


class Redis:
    """The benchmark's ``redis-server`` (``running_redis()``), pinned to :data:`REDIS_CPU`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])
        info = self.command("INFO", "server")
        self.pid = int(info.split("process_id:", 1)[1].split()[0])
        os.sched_setaffinity(self.pid, {int(REDIS_CPU)})
        self.version = info.split("redis_version:", 1)[1].split()[0]

    def command(self, *arguments: str) -> str:
        """Run one command with ``redis-cli`` and return its output."""
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *arguments],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout

    def cpu_seconds(self) -> float:
        """The CPU time the server used so far, user and system (``INFO cpu``)."""
        info = self.command("INFO", "cpu")
        return sum(
            float(info.split(f"{name}:", 1)[1].split()[0])
            for name in ("used_cpu_user", "used_cpu_sys")
        )

    def flush(self) -> None:
        """Empty every database, so each run starts from the same empty server."""
        if self.command("FLUSHALL").strip() != "OK":
            raise RuntimeError(f"FLUSHALL failed on the benchmark's Redis at {self.url}.")


@contextlib.contextmanager
def benchmark_redis() -> Iterator[Redis]:
    """A fresh ``redis-server`` on a free port of 127.0.0.1, persistence off."""
    from channels_core.testing.redis import running_redis

    with running_redis() as url:
        yield Redis(url)


def child_run(
    section: str, which: str, redis: Redis, args: argparse.Namespace, python: Path
) -> dict:
    """One measurement in a fresh subprocess under *python*, on a pinned CPU; its JSON."""
    if section != "broadcast":  # the broadcast's group lives on the server: keep it
        redis.flush()
    messages = args.core_messages if which == "core" else args.messages
    command = [
        *("taskset", "-c", REDIS_CPU if section == "broadcast" else MEASURED_CPU),
        *(str(python), str(Path(__file__).resolve()), "--run", section, "--layer", which),
        *("--redis", redis.url, "--messages", str(messages), "--budget", str(args.budget)),
        *("--group-size", str(args.group_size), "--group-sends", str(args.group_sends)),
    ]
    before = redis.cpu_seconds()
    result = run_json(command, f"The {section} run of {which}", args.budget + 120)
    # Redis's own work per message delivered: CPU time rather than wall time, so the load
    # of the rest of the machine moves it little.
    delivered = result.get("received", result.get("delivered")) or 1
    result["redis_cpu_us_per_message"] = (redis.cpu_seconds() - before) * 1e6 / delivered
    return result


def redis_benchmark(redis: Redis, *arguments: str) -> dict[str, float]:
    """Requests per second of each test of one ``redis-benchmark`` run (``--csv``)."""
    done = subprocess.run(
        [
            *("taskset", "-c", MEASURED_CPU, "redis-benchmark", "-h", "127.0.0.1"),
            *("-p", str(redis.port), "--csv", *arguments),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    rows = csv.DictReader(line for line in done.stdout.splitlines() if line.startswith('"'))
    return {row["test"].split()[0].upper(): float(row["rps"]) for row in rows}


def measure_ceiling(redis: Redis) -> dict:
    """``redis-benchmark`` for LPUSH, LPOP and EVALSHA: 50 clients with and without
    pipelining, and one client unpipelined."""
    sha = redis.command("SCRIPT", "LOAD", "return redis.call('RPUSH', KEYS[1], ARGV[1])").strip()
    result = {}
    for label, options in (
        ("c50", ["-c", "50", "-n", "200000"]),
        ("c50_P16", ["-c", "50", "-P", "16", "-n", "1000000"]),
        ("c1", ["-c", "1", "-n", "30000"]),
    ):
        redis.flush()
        figures = redis_benchmark(redis, *options, "-t", "lpush,lpop")
        redis.flush()
        figures.update(redis_benchmark(redis, *options, "evalsha", sha, "1", "bench:eval", "x"))
        result[label] = figures
    return result


def server_command(which: str, port: int, redis: Redis) -> tuple[list[str], dict[str, str]]:
    """The WebSocket server of *which* on *port*, and the environment it needs."""
    env = {"BENCH_REDIS_URL": redis.url}
    endpoint = f"tcp:{port}:interface=127.0.0.1"
    if which == "ours":
        settings = "bench_ours_redis.settings"
        return channels_serve(APPS / "ours_redis", settings, "--endpoint", endpoint), env
    env.update(PYTHONPATH=str(APPS / "peer_redis"), BENCH_PEER_LAYER=which)
    daphne = PEER_VENV / "bin" / "daphne"
    application = "bench_peer_redis.asgi:application"
    return [str(daphne), "-b", "127.0.0.1", "-p", str(port), "-v", "0", application], env


def measure_broadcast(which: str, redis: Redis, args: argparse.Namespace, python: Path) -> dict:
    """1,000 WebSocket clients in one group on a fresh server; the broadcasts they receive."""
    from channels_core.testing.processes import free_port, start_process, wait_for_port

    redis.flush()
    port = free_port()
    command, env = server_command(which, port, redis)
    with start_process(["taskset", "-c", MEASURED_CPU, *command], env=env) as server:
        try:
            wait_for_port(port, timeout=START_TIMEOUT)
        except TimeoutError as error:
            raise RuntimeError(f"The {which} server did not start:\n{server.output}") from error
        loadgen = [
            *("taskset", "-c", REDIS_CPU, sys.executable, str(BROADCAST_LOADGEN)),
            *("--port", str(port), "--connections", str(args.clients)),
            *("--concurrency", str(HANDSHAKE_CONCURRENCY)),
            *("--broadcasts", str(args.group_sends), "--server-pid", str(server.popen.pid)),
        ]
        with start_process(loadgen) as clients:
            try:
                clients.wait_for_line(r'^\{"ready"', timeout=START_TIMEOUT * 2)
            except (TimeoutError, RuntimeError) as error:
                raise RuntimeError(
                    f"{args.clients} clients could not connect to {which}: {error}\n"
                    f"Server output:\n{server.output}"
                ) from error
            sender = child_run("broadcast", which, redis, args, python)
            status = clients.wait(timeout=args.budget + 60)
            if status:
                raise RuntimeError(f"The broadcast clients failed:\n{clients.output}")
            result = json.loads(clients.lines[-1])
        server.terminate(timeout=20)
    result["sender_seconds"] = sender["seconds"]
    result["complete"] = result["delivered"] == result["expected"]
    return result


def summary(runs: list[dict]) -> dict:
    """The median of every numeric figure of *runs*, and whether every run was complete."""
    return medians(runs) | {"complete": all(run.get("complete", True) for run in runs)}


def compare(args: argparse.Namespace) -> dict:
    """Every chosen section for every chosen layer, *runs* times, alternating; medians."""
    from ws_load import raise_open_files

    raise_open_files(args.clients + 200)
    # Children get exactly the interpreter's own packages: ours, or the peer venv's.
    os.environ.pop("PYTHONPATH", None)
    pythons = {"ours": Path(sys.executable)}
    if set(args.layer) - {"ours"}:
        bin_dir = peer_venv(PEER_VENV, PEER_REQUIREMENTS, needs=("python", "daphne"))
        pythons["core"] = pythons["pubsub"] = bin_dir / "python"
    layer_sections = [s for s in args.only if s != "ceiling"]
    runs: dict = {section: {which: [] for which in args.layer} for section in layer_sections}
    ceilings: list[dict] = []
    with benchmark_redis() as redis:
        for repetition in range(args.runs):
            for section in args.only:
                if section == "ceiling":
                    print(f"run {repetition + 1}: redis-benchmark", file=sys.stderr)
                    ceilings.append(measure_ceiling(redis))
                    continue
                for which in args.layer:
                    print(f"run {repetition + 1}: {section} {which}", file=sys.stderr)
                    if section == "broadcast":
                        result = measure_broadcast(which, redis, args, pythons[which])
                    else:
                        result = child_run(section, which, redis, args, pythons[which])
                    runs[section][which].append(result)
                    print(f"  {json.dumps(result)}", file=sys.stderr)
        redis_version = redis.version
    result: dict = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "redis_version": redis_version,
        "runs_each": args.runs,
        "runs": runs,
        "median": {s: {w: summary(r) for w, r in by.items()} for s, by in runs.items()},
    }
    if ceilings:
        result["runs"]["ceiling"] = ceilings
        result["median"]["ceiling"] = {
            label: {
                command: statistics.median(run[label][command] for run in ceilings)
                for command in ceilings[0][label]
            }
            for label in ceilings[0]
        }
    return result


# The figure of each section: (section, key, label, format).
ROWS = [
    ("pairs", "pairs_per_second", "send/receive pairs/s", "{:,.0f}"),
    ("pairs", "redis_cpu_us_per_message", "pairs: Redis CPU µs/message", "{:,.1f}"),
    ("fanout", "deliveries_per_second", "fan-out deliveries/s", "{:,.0f}"),
    ("fanout", "redis_cpu_us_per_message", "fan-out: Redis CPU µs/delivery", "{:,.2f}"),
    ("fanout", "latency_p50_ms", "fan-out latency p50, ms", "{:,.1f}"),
    ("fanout", "latency_p99_ms", "fan-out latency p99, ms", "{:,.1f}"),
    ("broadcast", "deliveries_per_second", "WS broadcast deliveries/s", "{:,.0f}"),
    ("broadcast", "latency_p50_ms", "WS broadcast latency p50, ms", "{:,.1f}"),
    ("broadcast", "latency_p99_ms", "WS broadcast latency p99, ms", "{:,.1f}"),
]


def print_table(result: dict) -> None:
    """The side-by-side table, ratios of ours to each peer, and the redis-benchmark ceiling."""
    median = result["median"]
    print(f"medians of {result['runs_each']} runs each; * = some runs did not deliver everything")
    print(
        f"{'measurement':<30}{'ours':>12}{'core':>12}{'pubsub':>12}"
        f"{'ours/core':>11}{'ours/pubsub':>13}{'goal':>10}"
    )
    for section, key, label, style in ROWS:
        if section not in median:
            continue
        cells, values = "", {}
        for which in LAYERS:
            figures = median[section].get(which)
            if figures is None:
                cells += f"{'':>12}"
                continue
            values[which] = figures[key]
            mark = "" if figures["complete"] else "*"
            cells += f"{style.format(figures[key]) + mark:>12}"
        ratios = ""
        for peer, width in (("core", 11), ("pubsub", 13)):
            # Ratios of throughput only: ours over the peer, more is better.
            if key.endswith("per_second") and "ours" in values and values.get(peer):
                ratios += f"{values['ours'] / values[peer]:>{width - 1}.2f}x"
            else:
                ratios += " " * width
        goal = GOALS.get(section) if key.endswith("per_second") else None
        print(f"{label:<30}{cells}{ratios}{f'{goal:,}' if goal else '':>10}")
    ceiling = median.get("ceiling")
    if ceiling:
        print("\nredis-benchmark, requests/s (50 clients; 50 clients -P 16; 1 client):")
        for command in ceiling["c50"]:
            figures = [ceiling[label][command] for label in ("c50", "c50_P16", "c1")]
            print(f"  {command:<10}" + "".join(f"{figure:>14,.0f}" for figure in figures))


def main() -> None:
    """Parse the command line, then run one child measurement or the whole comparison."""
    parser = argument_parser(__doc__, repeat=3, flag="--runs")
    parser.add_argument("--run", choices=["pairs", "fanout", "broadcast"], help="one, in-process")
    parser.add_argument("--redis", help="the Redis URL, with --run")
    parser.add_argument("--profile", action="store_true", help="with --run: cProfile on stderr")
    parser.add_argument("--layer", action="append", choices=LAYERS, help="default: all three")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="default: all four")
    parser.add_argument("--messages", type=int, default=20_000, help="pairs: ours, pubsub")
    parser.add_argument("--core-messages", type=int, default=5_000, help="pairs: core")
    parser.add_argument("--group-size", type=int, default=1_000)
    parser.add_argument("--group-sends", type=int, default=100, help="also the broadcasts")
    parser.add_argument("--clients", type=int, default=1_000, help="WebSocket clients")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds a run may take (default 60)"
    )
    args = parser.parse_args()
    args.layer = args.layer or list(LAYERS)
    if args.run:
        if not args.redis or len(args.layer) != 1:
            parser.error("--run needs --redis URL and exactly one --layer.")
        print(json.dumps(run_child(args)))
        return
    args.only = args.only or list(SECTIONS)
    sys.path.insert(0, str(HERE / "loadgen"))
    report(compare(args), args.json, print_table, keep=RESULTS / "layer_redis.json")


if __name__ == "__main__":
    main()
