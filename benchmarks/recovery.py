"""Recovery after a drop, end to end: 1,000 WebSocket clients each miss 1,000 messages of
their group, reconnect, and get them back; how long until all are live again.

``channels serve`` runs the benchmark project (``benchmarks/apps/ours``, in-process mode,
memory layer) pinned to CPU 0; ``/recover/`` is a ``recover = True`` JSON consumer whose
group, ``bench-room``, keeps its last 1,000 messages. The clients run on CPU 1, on uvloop
(``loadgen/ws_load.py``'s protocol):

1. *clients* connections open (100 handshakes at a time); each gets the ``recovered``
   marker with the room's position;
2. all of them close; one more client says *messages* things to the room, waiting for each
   to come back, so that the room's history holds them all;
3. the *clients* reconnect at once (100 handshakes at a time), each with ``channels_since``
   the position it had: each gets the *messages* it missed, marked ``recovered``, then the
   marker, which makes it live again.

The figure is the time from the first reconnect to the last marker (every recovered frame
counted and checked), and the recovered messages per second that makes. Medians of
``--repeat`` runs, each on a fresh server.

Usage::

    python benchmarks/recovery.py                       # 1,000 x 1,000, 3 runs, a table
    python benchmarks/recovery.py --clients 100 --messages 100 --repeat 1 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "loadgen"))

from _common import (  # noqa: E402
    ServerProcess,
    argument_parser,
    channels_serve,
    child_env,
    report,
    run_json,
)
from ws_load import ClientProtocol, open_client, open_many, raise_open_files  # noqa: E402

from channels_core.testing.processes import free_port, wait_for_port  # noqa: E402

APP = HERE / "apps" / "ours"
MARKER = b'{"channels":"recovered"'
CONCURRENCY = 100
TIMEOUT = 300


class Member(ClientProtocol):
    """One client: counts the recovered frames it gets, and notes the marker's position."""

    def __init__(self, request: bytes) -> None:
        super().__init__(request)
        self.recovered = 0
        self.position = None
        self.live: asyncio.Future = asyncio.get_running_loop().create_future()

    def frames(self, data: bytes) -> None:
        for opcode, buffer, start, end in self.split(data):
            if opcode != 0x1:
                continue
            payload = buffer[start:end]
            if payload.startswith(MARKER):
                marker = json.loads(payload)
                self.position = marker["position"]
                if not self.live.done():
                    self.live.set_result(marker["complete"])
            elif b'"recovered":true' in payload:
                self.recovered += 1


class Speaker(ClientProtocol):
    """The client that talks while the others are away: one message at a time."""

    def __init__(self, request: bytes) -> None:
        super().__init__(request)
        self.heard: asyncio.Queue = asyncio.Queue()

    def frames(self, data: bytes) -> None:
        for opcode, buffer, start, end in self.split(data):
            if opcode == 0x1 and not buffer[start:end].startswith(MARKER):
                self.heard.put_nowait(buffer[start:end])

    def say(self, n: int) -> None:
        # A short text frame with a zero mask, which leaves the payload as it is.
        payload = json.dumps({"say": n}).encode()
        self.transport.write(bytes((0x81, 0x80 | len(payload))) + bytes(4) + payload)


async def run_clients(port: int, clients: int, messages: int) -> dict:
    """The three steps; the figures of the third."""
    path = "/recover/"
    members = await open_many(clients, CONCURRENCY, lambda: open_client(port, path, Member))
    await asyncio.wait_for(asyncio.gather(*(m.live for m in members)), TIMEOUT)
    positions = [m.position for m in members]
    for member in members:
        member.transport.close()
    speaker = await open_client(port, path, Speaker)
    for n in range(messages):
        speaker.say(n)
        await asyncio.wait_for(speaker.heard.get(), TIMEOUT)
    started = time.perf_counter()

    async def back(position) -> Member:
        since = {"bench-room": position} if position else {"bench-room": ["none", 0]}
        query = urllib.parse.urlencode({"channels_since": json.dumps(since)})
        return await open_client(port, f"{path}?{query}", Member)

    slots = asyncio.Semaphore(CONCURRENCY)

    async def limited(position) -> Member:
        async with slots:
            return await back(position)

    returned = await asyncio.gather(*(limited(position) for position in positions))
    await asyncio.wait_for(asyncio.gather(*(m.live for m in returned)), TIMEOUT)
    elapsed = time.perf_counter() - started
    counts = [m.recovered for m in returned]
    speaker.transport.close()
    for member in returned:
        member.transport.close()
    if min(counts) != messages or max(counts) != messages:
        raise RuntimeError(f"recovered between {min(counts)} and {max(counts)} of {messages}")
    return {
        "seconds_until_all_live": elapsed,
        "recovered_per_second": clients * messages / elapsed,
    }


def measure(args: argparse.Namespace) -> dict:
    """One run on a fresh server: the load in a child pinned to CPU 1."""
    port = free_port()
    command = channels_serve(
        APP, "bench_ours.settings", "--endpoint", f"tcp:{port}:interface=127.0.0.1"
    )
    with ServerProcess(
        ["taskset", "-c", "0", *command], env=child_env(), log=HERE / "results" / "recovery.log"
    ):
        wait_for_port(port, timeout=60)
        load = [
            "taskset", "-c", "1", sys.executable, str(Path(__file__).resolve()),
            "--run", str(port), "--clients", str(args.clients), "--messages", str(args.messages),
        ]  # fmt: skip
        return run_json(load, "The recovery clients", TIMEOUT + 60)


def compare(args: argparse.Namespace) -> dict:
    runs = []
    for repetition in range(args.repeat):
        print(f"run {repetition + 1}", file=sys.stderr)
        runs.append(measure(args))
    median = {
        key: statistics.median(run[key] for run in runs)
        for key in ("seconds_until_all_live", "recovered_per_second")
    }
    return {"repeat": args.repeat, "clients": args.clients, "messages": args.messages,
            "runs": runs, "median": median}  # fmt: skip


def print_table(result: dict) -> None:
    median = result["median"]
    print(
        f"medians of {result['repeat']} runs: {result['clients']:,} clients each recovering "
        f"{result['messages']:,} messages"
    )
    print(f"  time until all are live again: {median['seconds_until_all_live']:.2f} s")
    print(f"  recovered messages per second: {median['recovered_per_second']:,.0f}")
    for run in result["runs"]:
        print(f"  run: {run['seconds_until_all_live']:.2f} s")


def main() -> None:
    parser = argument_parser(__doc__, repeat=3)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        import uvloop

        raise_open_files(2 * args.clients + 100)
        print(json.dumps(uvloop.run(run_clients(args.run, args.clients, args.messages))))
        return
    (HERE / "results").mkdir(exist_ok=True)
    report(compare(args), args.json, print_table, keep=HERE / "results" / "recovery.json")


if __name__ == "__main__":
    main()
