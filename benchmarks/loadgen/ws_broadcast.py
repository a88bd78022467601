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

import uvloop
from ws_load import TIMEOUT, client_frame, cpu_seconds, handshake, raise_open_files

HANDSHAKE_END = b"\r\n\r\n"


class Deliveries:
    """What every connection adds to: latencies, and the last arrival."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.last_arrival = 0.0
        self.first_sent = float("inf")
        self.unexpected = 0  # frames that were neither a broadcast nor a ping


class BroadcastProtocol(asyncio.Protocol):
    """One client connection: the opening handshake, then timing each text frame."""

    def __init__(self, request: bytes, deliveries: Deliveries) -> None:
        self.request = request
        self.deliveries = deliveries
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.open = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        if self.open:
            self.frames(data)
            return
        self.buffer += data
        end = self.buffer.find(HANDSHAKE_END)
        if end < 0:
            return
        head, rest = self.buffer[:end], self.buffer[end + 4 :]
        if self.opened.done():  # given up on (the run is ending)
            self.transport.close()
            return
        if not head.startswith(b"HTTP/1.1 101"):
            self.opened.set_exception(ConnectionError(f"handshake refused: {head[:200]!r}"))
            self.transport.close()
            return
        self.open = True
        self.buffer = b""
        self.opened.set_result(None)
        if rest:
            self.frames(rest)

    def frames(self, data: bytes) -> None:
        """Time every complete text frame; answer pings with their payload."""
        arrival = time.monotonic()
        buffer = self.buffer + data if self.buffer else data
        end = len(buffer)
        position = 0
        deliveries = self.deliveries
        while end - position >= 2:
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if end - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if end - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                header = 10
            if end - position < header + length:
                break
            opcode = buffer[position] & 0x0F
            start = position + header
            position = start + length
            if opcode == 0x1:
                sent = float(buffer[start:position].split(b" ", 1)[1])
                deliveries.latencies.append(arrival - sent)
                if sent < deliveries.first_sent:
                    deliveries.first_sent = sent
            elif opcode == 0x9:
                self.transport.write(client_frame(0xA, bytes(buffer[start:position])))
            else:
                deliveries.unexpected += 1
        if position:
            deliveries.last_arrival = arrival
        self.buffer = buffer[position:]


async def connect(port: int, path: str, deliveries: Deliveries) -> BroadcastProtocol:
    """Open one WebSocket connection and wait for its handshake."""
    loop = asyncio.get_running_loop()
    request = handshake(port, path)
    _, protocol = await loop.create_connection(
        lambda: BroadcastProtocol(request, deliveries), "127.0.0.1", port
    )
    await asyncio.wait_for(protocol.opened, TIMEOUT)
    return protocol


def percentile(values: list[float], fraction: float) -> float:
    """The *fraction* quantile of *values* (nearest rank), or NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> dict:
    """Open the connections, announce them, then time the broadcasts until done or idle."""
    deliveries = Deliveries()
    slots = asyncio.Semaphore(args.concurrency)

    async def open_one() -> BroadcastProtocol:
        async with slots:
            return await connect(args.port, args.path, deliveries)

    started = time.monotonic()
    connections = await asyncio.gather(*(open_one() for _ in range(args.connections)))
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
