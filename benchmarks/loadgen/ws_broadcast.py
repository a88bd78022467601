"""WebSocket clients that receive broadcasts and time each delivery, on uvloop.

Opens *connections* WebSocket connections (*concurrency* opening handshakes at a time) and
prints ``{"ready": ...}`` on stdout once all are open; then counts the text frames every
connection receives until *connections* x *broadcasts* have arrived, or none arrived for
*idle* seconds, and prints the result as one JSON line.

Each broadcast's text is ``"<n> <send time>"``, the send time read from ``time.monotonic()``
(``CLOCK_MONOTONIC``, one clock for every process of the machine) by the process that sent
it, so a delivery's latency is its arrival time minus that stamp, and the deliveries per
second are counted from the first stamp to the last arrival. With ``--server-pid`` the
result also gives the share of a CPU the server used in that window.

Usage::

    python benchmarks/loadgen/ws_broadcast.py --port 8000 --connections 1000 --broadcasts 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import uvloop
from ws_load import (
    TIMEOUT,
    ClientProtocol,
    client_frame,
    cpu_seconds,
    open_client,
    open_many,
    raise_open_files,
)

# benchmarks/, for what the benchmark scripts share (standard library only).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import percentile


class Deliveries:
    """What every connection adds to: latencies, and the last arrival."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.last_arrival = 0.0
        self.first_sent = float("inf")
        self.unexpected = 0  # frames that were neither a broadcast nor a ping


class BroadcastProtocol(ClientProtocol):
    """One client connection timing each text frame."""

    def __init__(self, request: bytes, deliveries: Deliveries) -> None:
        super().__init__(request)
        self.deliveries = deliveries

    def frames(self, data: bytes) -> None:
        """Time every complete text frame; answer pings with their payload."""
        arrival = time.monotonic()
        deliveries = self.deliveries
        complete = False
        for opcode, buffer, start, end in self.split(data):
            complete = True
            if opcode == 0x1:
                sent = float(buffer[start:end].split(b" ", 1)[1])
                deliveries.latencies.append(arrival - sent)
                if sent < deliveries.first_sent:
                    deliveries.first_sent = sent
            elif opcode == 0x9:
                self.transport.write(client_frame(0xA, bytes(buffer[start:end])))
            else:
                deliveries.unexpected += 1
        if complete:
            deliveries.last_arrival = arrival


async def run(args: argparse.Namespace) -> dict:
    """Open the connections, announce them, then time the broadcasts until done or idle."""
    deliveries = Deliveries()

    def connect() -> Awaitable[BroadcastProtocol]:
        return open_client(
            args.port, args.path, lambda request: BroadcastProtocol(request, deliveries)
        )

    started = time.monotonic()
    connections = await open_many(args.connections, args.concurrency, connect)
    print(json.dumps({"ready": time.monotonic() - started}), flush=True)
    expected = args.connections * args.broadcasts
    ready_at = time.monotonic()
    own_cpu = time.process_time()
    server_cpu = cpu_seconds(args.server_pid) if args.server_pid else 0.0
    while len(deliveries.latencies) < expected:
        await asyncio.sleep(0.05)
        # Before the first broadcast arrives the sender may still be starting up.
        quiet_since = deliveries.last_arrival or ready_at
        if time.monotonic() - quiet_since > (args.idle if deliveries.last_arrival else TIMEOUT):
            break
    window = max(deliveries.last_arrival - ready_at, 1e-9)
    own_cpu = time.process_time() - own_cpu
    server_cpu = cpu_seconds(args.server_pid) - server_cpu if args.server_pid else None
    for protocol in connections:
        protocol.transport.close()
    latencies = deliveries.latencies
    elapsed = deliveries.last_arrival - deliveries.first_sent if latencies else float("nan")
    return {
        "connections": args.connections,
        "expected": expected,
        "delivered": len(latencies),
        "unexpected_frames": deliveries.unexpected,
        "open_seconds": ready_at - started,
        "deliveries_per_second": len(latencies) / elapsed if latencies else 0.0,
        "latency_p50_ms": percentile(latencies, 0.50) * 1e3,
        "latency_p99_ms": percentile(latencies, 0.99) * 1e3,
        "latency_max_ms": max(latencies, default=float("nan")) * 1e3,
        # CPU shares from "ready" to the last arrival (the sender's start-up included).
        "generator_cpu": own_cpu / window,
        "server_cpu": server_cpu / window if server_cpu is not None else None,
    }


def main() -> None:
    """Parse the command line, run, and print the result's JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/broadcast/")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds without a frame")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for everything")
    parser.add_argument("--server-pid", type=int, help="the server, for its CPU time")
    args = parser.parse_args()
    raise_open_files(args.connections + 100)
    try:
        result = uvloop.run(asyncio.wait_for(run(args), args.budget))
    except TimeoutError:
        sys.exit(f"The broadcast run took more than its budget of {args.budget} s.")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
