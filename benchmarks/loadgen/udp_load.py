"""UDP echo load: a bounded window of datagrams in flight from 127.0.0.1, losses counted.

Each of ``--sockets`` client sockets keeps ``--window`` datagrams in flight: every echo that
comes back is checked (its sequence number must be one in flight) and replaced by a new
datagram at once. A datagram not echoed within ``--loss-timeout`` seconds is counted lost
and replaced, so the window never shrinks. After ``--warmup`` seconds the counts restart and
the run is measured for ``--duration`` seconds; the CPU time of the server (``--server-pid``)
and of the generator over that window shows which side was the bottleneck.

Prints one JSON object: ``datagrams_per_second``, ``echoed``, ``lost``,
``server_cpu`` and ``generator_cpu`` (fractions of one CPU).

Usage::

    python benchmarks/loadgen/udp_load.py --port 9000 --server-pid 1234
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ws_load import cpu_seconds


class Flow:
    """One client socket and the sequence numbers it has in flight, with their send times."""

    def __init__(self, port: int, size: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.padding = b"x" * (size - 8)
        self.in_flight: dict[int, float] = {}
        self.next_number = 0

    def send(self, now: float) -> None:
        """Send the next datagram."""
        number = self.next_number
        self.next_number += 1
        self.in_flight[number] = now
        # A full send buffer loses the datagram; it is counted lost when it is not echoed.
        with contextlib.suppress(BlockingIOError):
            self.sock.send(number.to_bytes(8, "big") + self.padding)

    def expire(self, now: float, timeout: float) -> int:
        """Forget the datagrams in flight longer than *timeout*; how many there were."""
        late = [number for number, sent in self.in_flight.items() if now - sent > timeout]
        for number in late:
            del self.in_flight[number]
        return len(late)


def run(args: argparse.Namespace) -> dict:
    """Drive the server for warm-up plus duration seconds; the counts of the measured part."""
    flows = [Flow(args.port, args.size) for _ in range(args.sockets)]
    selector = selectors.DefaultSelector()
    for flow in flows:
        selector.register(flow.sock, selectors.EVENT_READ, flow)
    now = time.monotonic()
    for flow in flows:
        for _ in range(args.window):
            flow.send(now)
    echoed = lost = 0
    measuring = False
    started = now
    deadline = now + args.warmup
    next_expiry = now + args.loss_timeout
    server_cpu = generator_cpu = 0.0
    while True:
        for key, _ in selector.select(args.loss_timeout):
            flow = key.data
            sock = flow.sock
            in_flight = flow.in_flight
            while True:
                try:
                    reply = sock.recv(65536)
                except BlockingIOError:
                    break
                except ConnectionRefusedError as error:
                    raise SystemExit(f"Nothing listens on UDP port {args.port}: {error}") from None
                if in_flight.pop(int.from_bytes(reply[:8], "big"), None) is not None:
                    echoed += 1
                    flow.send(now)
        now = time.monotonic()
        if now >= next_expiry:
            for flow in flows:
                expired = flow.expire(now, args.loss_timeout)
                lost += expired
                for _ in range(expired):
                    flow.send(now)
            next_expiry = now + args.loss_timeout
        if now >= deadline:
            if measuring:
                break
            measuring = True
            echoed = lost = 0
            started = now
            deadline = now + args.duration
            server_cpu = cpu_seconds(args.server_pid) if args.server_pid else 0.0
            generator_cpu = time.process_time()
    elapsed = now - started
    result = {
        "datagrams_per_second": echoed / elapsed,
        "echoed": echoed,
        "lost": lost,
        "generator_cpu": (time.process_time() - generator_cpu) / elapsed,
        "server_cpu": (
            (cpu_seconds(args.server_pid) - server_cpu) / elapsed if args.server_pid else None
        ),
    }
    for flow in flows:
        flow.sock.close()
    return result


def main() -> None:
    """Parse the command line, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, default=0)
    parser.add_argument("--sockets", type=int, default=8, help="client sockets (8)")
    parser.add_argument("--window", type=int, default=16, help="in flight per socket (16)")
    parser.add_argument("--size", type=int, default=64, help="datagram bytes (64, at least 8)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds (1)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (5)")
    parser.add_argument("--loss-timeout", type=float, default=0.5, help="seconds (0.5)")
    args = parser.parse_args()
    if args.size < 8:
        parser.error("--size must be at least 8: each datagram carries an 8-byte number.")
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
