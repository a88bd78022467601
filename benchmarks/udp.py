"""UDP echo: ``channels serve`` (channels-udp, in-process) beside bare Twisted.

- **ours**: ``channels serve --udp 127.0.0.1:PORT`` with ``benchmarks/apps/udp/bench_udp``:
  every datagram is a ``udp.receive`` event routed to an async consumer that sends
  ``{"data": message["data"]}`` to the reply channel;
- **bare**: ``benchmarks/apps/bare_udp.py``, the same echo written on Twisted's
  ``DatagramProtocol``, on the same reactor setup (Twisted's asyncio reactor on uvloop).

Each run starts a fresh server pinned to CPU 0 (``taskset -c 0``) and runs
``benchmarks/loadgen/udp_load.py`` pinned to CPU 1: 8 client sockets on 127.0.0.1 keeping 16
datagrams of 64 bytes in flight each, 1 s of warm-up then 5 s measured; echoed datagrams per
second, and losses. The contenders alternate; the figures are medians of 3 runs.

Usage::

    python benchmarks/udp.py                   # both, 3 runs each, medians, the ratio
    python benchmarks/udp.py --json            # the same as JSON with every run
    python benchmarks/udp.py --contender ours --repeat 1
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

from _common import (
    ServerProcess,
    argument_parser,
    channels_serve,
    child_env,
    medians,
    report,
    require_two_cpus,
    run_json,
)

from channels_core.testing.processes import free_port

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
LOADGEN = HERE / "loadgen" / "udp_load.py"
SERVER_CPU, LOAD_CPU = "0", "1"
START_TIMEOUT = 60.0
RUN_TIMEOUT = 120
CONTENDERS = ("ours", "bare")
GOAL = 1.5


def server_command(contender: str, port: int) -> list[str]:
    """The command line that starts *contender* on UDP *port*."""
    if contender == "ours":
        return channels_serve(APPS / "udp", "bench_udp.settings", "--udp", f"127.0.0.1:{port}")
    return [sys.executable, str(APPS / "bare_udp.py"), str(port)]


def wait_for_echo(port: int, timeout: float = START_TIMEOUT) -> None:
    """Send a datagram every 0.1 s until it comes back; RuntimeError after *timeout*."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(0.1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe.sendto(b"probe", ("127.0.0.1", port))
            try:
                if probe.recv(100) == b"probe":
                    return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise RuntimeError(f"Nothing echoed on UDP 127.0.0.1:{port} within {timeout} s.")


class Server(ServerProcess):
    """One contender's server process, pinned to the server CPU, stopped on exit."""

    def __init__(self, contender: str) -> None:
        self.contender = contender
        self.port = free_port(socket.SOCK_DGRAM)
        (HERE / "results").mkdir(exist_ok=True)
        super().__init__(
            ["taskset", "-c", SERVER_CPU, *server_command(contender, self.port)],
            env=child_env(),
            log=HERE / "results" / f"udp-{contender}.log",
        )

    def ready(self) -> None:
        """Wait until the server echoes a datagram."""
        wait_for_echo(self.port)


def measure(contender: str, args: argparse.Namespace) -> dict:
    """One run of the load generator against a freshly started server."""
    with Server(contender) as server:
        return run_json(
            [
                *("taskset", "-c", LOAD_CPU, sys.executable, str(LOADGEN)),
                *("--port", str(server.port), "--server-pid", str(server.pid)),
                *("--duration", str(args.duration)),
            ],
            f"The load generator's run against {contender}",
            RUN_TIMEOUT,
        )


def compare(args: argparse.Namespace) -> dict:
    """*repeat* runs of each contender, alternating; the medians and ours over bare."""
    require_two_cpus()
    runs: dict[str, list[dict]] = {contender: [] for contender in args.contender}
    for repetition in range(args.repeat):
        for contender in args.contender:
            print(f"run {repetition + 1}: {contender}", file=sys.stderr)
            runs[contender].append(measure(contender, args))
    median = {contender: medians(results) for contender, results in runs.items()}
    result = {"repeat": args.repeat, "runs": runs, "median": median}
    if "ours" in median and "bare" in median:
        ours = median["ours"]["datagrams_per_second"]
        result["bare_over_ours"] = median["bare"]["datagrams_per_second"] / ours
    return result


def print_table(result: dict) -> None:
    """Each contender's medians, then the ratio against the goal."""
    print(f"medians of {result['repeat']} runs each (server on CPU 0, load on CPU 1)")
    print(f"{'contender':<10}{'datagrams/s':>14}{'lost':>8}{'server CPU':>12}{'load CPU':>10}")
    for contender, median in result["median"].items():
        print(
            f"{contender:<10}{median['datagrams_per_second']:>14,.0f}{median['lost']:>8.0f}"
            f"{median['server_cpu']:>12.0%}{median['generator_cpu']:>10.0%}"
        )
    if "bare_over_ours" in result:
        print(f"bare / ours: {result['bare_over_ours']:.2f}x (goal: at most {GOAL}x)")


def main() -> None:
    """Parse the command line, run the comparison and print it."""
    parser = argument_parser(__doc__, repeat=3)
    parser.add_argument("--contender", action="append", choices=CONTENDERS)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (5)")
    args = parser.parse_args()
    args.contender = args.contender or list(CONTENDERS)
    report(compare(args), args.json, print_table, keep=HERE / "results" / "udp.json")


if __name__ == "__main__":
    main()
