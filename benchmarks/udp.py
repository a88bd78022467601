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
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

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
        return [
            str(Path(sys.executable).parent / "channels"),
            *("--pythonpath", str(APPS / "udp"), "--settings", "bench_udp.settings"),
            *("-v", "0", "serve", "--udp", f"127.0.0.1:{port}"),
        ]
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


class Server:
    """One contender's server process, pinned to the server CPU, stopped on exit."""

    def __init__(self, contender: str) -> None:
        self.contender = contender
        self.port = free_port(socket.SOCK_DGRAM)
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        (HERE / "results").mkdir(exist_ok=True)
        self.log = open(HERE / "results" / f"udp-{contender}.log", "a")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *server_command(contender, self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __enter__(self) -> Server:
        try:
            wait_for_echo(self.port)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


def measure(contender: str, args: argparse.Namespace) -> dict:
    """One run of the load generator against a freshly started server."""
    with Server(contender) as server:
        done = subprocess.run(
            [
                *("taskset", "-c", LOAD_CPU, sys.executable, str(LOADGEN)),
                *("--port", str(server.port), "--server-pid", str(server.process.pid)),
                *("--duration", str(args.duration)),
            ],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    if done.returncode:
        raise RuntimeError(f"The load generator failed against {contender}:\n{done.stderr}")
    return json.loads(done.stdout)


def compare(args: argparse.Namespace) -> dict:
    """*repeat* runs of each contender, alternating; the medians and ours over bare."""
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is not installed: apt-get install -y util-linux.")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("This benchmark pins the server and the load to two CPUs; there is one.")
    runs: dict[str, list[dict]] = {contender: [] for contender in args.contender}
    for repetition in range(args.repeat):
        for contender in args.contender:
            print(f"run {repetition + 1}: {contender}", file=sys.stderr)
            runs[contender].append(measure(contender, args))
    medians = {
        contender: {
            key: statistics.median(result[key] for result in results)
            for key in ("datagrams_per_second", "lost", "server_cpu", "generator_cpu")
        }
        for contender, results in runs.items()
    }
    result = {"repeat": args.repeat, "runs": runs, "median": medians}
    if "ours" in medians and "bare" in medians:
        ours = medians["ours"]["datagrams_per_second"]
        result["bare_over_ours"] = medians["bare"]["datagrams_per_second"] / ours
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--contender", action="append", choices=CONTENDERS)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (5)")
    args = parser.parse_args()
    args.contender = args.contender or list(CONTENDERS)
    result = compare(args)
    (HERE / "results" / "udp.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
