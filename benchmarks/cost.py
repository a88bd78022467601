"""What the server spends per HTTP request and per WebSocket message, in CPU instructions:
ours with and without channels-metrics, counted under Valgrind's callgrind.

Wall-clock throughput on a shared machine moves by tens of percent between runs; the
instructions a process executes do not depend on the machine's load. So each contender of
``http_ws.py`` (``ours``, ``ours-metrics``) is started exactly as that benchmark starts it,
but under ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``), and driven with a fixed
number of requests or messages:

- **http**: ``h2load --h1 -c 50`` (50 keep-alive connections, one request in flight each,
  as ``wrk -c50``) on ``/hello/``, *N* requests;
- **echo**: ``loadgen/ws_load.py echo --messages N`` with 50 connections and 16 messages in
  flight on each, as the echo measurement;
- **pingpong**: the same with one connection and one message in flight.

After a warm-up of every load, each load runs with a small count *N1* and a larger *N2*;
the server's counters are dumped after each (``callgrind_control --dump``, which also zeroes
them), and the instructions per unit are ``(I(N2) - I(N1)) / (N2 - N1)``: connection set-up
and tear-down, the same in both, cancel out. A CPU-bound server's throughput is inversely
proportional to its instructions per unit, so ours over ours-metrics is what the metrics
leave of ours's throughput (the table's ``metrics`` column, as in ``http_ws.py``).

Usage::

    python benchmarks/cost.py                    # both contenders, every load, a table
    python benchmarks/cost.py --json             # the same as JSON (always kept in
                                                 # results/cost.json)
    python benchmarks/cost.py --contender ours-metrics --measurement echo --repeat 1

The dumps stay in ``results/cost/<contender>/callgrind.out.<n>`` for
``callgrind_annotate`` (each names its load in its ``desc: Trigger:`` line). Under callgrind
Python runs some 50 times slower: the counts are a few thousand, the two servers run side by
side taking turns, and a run takes about five minutes. It needs valgrind
(``apt-get install -y valgrind``), h2load (``apt-get install -y nghttp2-client``) and
taskset, and two CPUs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from _common import argument_parser, report, require_two_cpus
from http2 import parse_h2load
from http_ws import LOAD_CPU, Server, run_loadgen

HERE = Path(__file__).resolve().parent
CONTENDERS = ("ours", "ours-metrics")
# Each load's label in the table, and its counts: warm-up, N1, N2.
LOADS = {
    "http": ("HTTP hello, per request", (200, 500, 1500)),
    "echo": ("WebSocket echo, per message", (1000, 2000, 6000)),
    "pingpong": ("ping-pong, per round trip", (100, 300, 900)),
}
HTTP_CONNECTIONS = 50
# The figures of each load: all the server's instructions, and all but the cyclic garbage
# collector's (whose full collections, tens of millions of instructions each, land in one
# window or the next).
FIGURES = {
    "per_unit": "instructions per unit",
    "per_unit_without_collector": "the same without the collector",
}
# The WebSocket loads: connections, messages in flight on each.
ECHO_LOAD = {"echo": ("50", "16"), "pingpong": ("1", "1")}
# Start-up under callgrind takes about a minute on this project's machine.
START_TIMEOUT = 600
DUMP_TIMEOUT = 120
# The TCP states (/proc/net/tcp) of a connection the server has yet to close: ESTABLISHED,
# CLOSE_WAIT.
HELD = ("01", "08")
# CPython's cyclic garbage collector: every collection runs through this function.
COLLECTOR = "gc_collect_main"


def require_tools() -> str:
    """The path of ``h2load``, after checking for valgrind, callgrind_control and taskset;
    a clear exit naming the package when one is missing."""
    for tool, package in (
        ("valgrind", "valgrind"),
        ("callgrind_control", "valgrind"),
        ("h2load", "nghttp2-client"),
    ):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is not installed, and this benchmark needs it: install it with "
                f"`apt-get install -y {package}` (Debian/Ubuntu)."
            )
    require_two_cpus()
    return shutil.which("h2load")


class Callgrind:
    """The callgrind run of one server: the wrapper command, and its dumps in *folder*."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("callgrind.out*"):
            old.unlink()
        self.dumps = 0

    def wrapper(self) -> list[str]:
        """``valgrind --tool=callgrind`` writing its dumps and its own log to the folder."""
        return [
            *("valgrind", "--tool=callgrind", "--dump-line=no"),
            f"--callgrind-out-file={self.folder / 'callgrind.out'}",
            f"--log-file={self.folder / 'valgrind.log'}",
        ]

    def dump(self, pid: int, what: str) -> tuple[int, int]:
        """Dump (and zero) the counters of the server *pid*, naming the dump *what*; the
        instructions it executed since the previous dump, and those of them that the cyclic
        garbage collector executed."""
        done = subprocess.run(
            ["callgrind_control", f"--dump={what}", str(pid)],
            capture_output=True,
            text=True,
            timeout=DUMP_TIMEOUT,
        )
        if done.returncode or "OK" not in done.stdout:
            raise RuntimeError(
                f"callgrind_control could not dump the server {pid}:\n{done.stdout}{done.stderr}"
            )
        self.dumps += 1
        path = self.folder / f"callgrind.out.{self.dumps}"
        deadline = time.monotonic() + DUMP_TIMEOUT
        while not (path.exists() and path.read_text().rstrip().endswith(tuple("0123456789"))):
            if time.monotonic() > deadline:
                raise RuntimeError(f"callgrind said it dumped, but {path} is not all there.")
            time.sleep(0.1)
        return costs(path.read_text())


def costs(dump: str) -> tuple[int, int]:
    """The instructions a callgrind *dump* (its text) counted, and those of them spent in
    the cyclic garbage collector (the inclusive cost of every call of ``COLLECTOR``)."""
    summary = re.search(r"^summary: (\d+)$", dump, re.MULTILINE)
    if summary is None:
        raise RuntimeError("A callgrind dump has no summary line.")
    # Function names are given once, as "(id) name", and then as "(id)" alone.
    names: dict[str, str] = {}
    callee = None
    into_collector = False
    collector = 0
    for line in dump.splitlines():
        if line.startswith(("fn=", "cfn=")):
            number, _, name = line.partition("=")[2].partition(" ")
            if name:
                names[number] = name
            callee = names.get(number)
        elif line.startswith("calls="):
            into_collector = callee == COLLECTOR
        elif into_collector:
            # The line after calls=: the call's position and its inclusive cost.
            collector += int(line.split()[1])
            into_collector = False
    return int(summary.group(1)), collector


def connections(port: int) -> int:
    """How many TCP connections to *port* on this machine the server still has to close:
    established, or closed by the client and not yet by the server (``/proc/net/tcp*``)."""
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, _, state = line.split()[1:4]
                held += int(local.rpartition(":")[2], 16) == port and state in HELD
    return held


def drive(server: Server, measurement: str, count: int, h2load: str) -> None:
    """Exactly *count* requests or messages of *measurement* against *server*; returns once
    the server closed the load's connections (so that their closing is counted with it)."""
    if measurement == "http":
        command = [
            *("taskset", "-c", LOAD_CPU, h2load, "--h1", "-t", "1"),
            *("-c", str(HTTP_CONNECTIONS), "-n", str(count)),
            f"http://127.0.0.1:{server.port}/hello/",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT)
        try:
            served = parse_h2load(done.stdout + done.stderr, "http/1.1")["requests"]
        except RuntimeError as error:
            raise RuntimeError(
                f"{error} against {server.contender}: `{' '.join(command)}`\n"
                f"{done.stdout}{done.stderr}"
            ) from None
    else:
        clients, in_flight = ECHO_LOAD[measurement]
        served = run_loadgen(
            server,
            *("echo", "--messages", str(count)),
            *("--connections", clients, "--in-flight", in_flight),
        )["messages"]
    if served != count:
        raise RuntimeError(f"{server.contender} served {served} of {count} ({measurement}).")
    deadline = time.monotonic() + DUMP_TIMEOUT
    while still := connections(server.port):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{server.contender} still holds {still} connections of the {measurement} "
                f"load open, {DUMP_TIMEOUT} s after it ended."
            )
        time.sleep(0.1)


class Counted:
    """One contender's server under callgrind, and what it counted."""

    def __init__(self, contender: str) -> None:
        self.contender = contender
        self.callgrind = Callgrind(HERE / "results" / "cost" / contender)
        self.server = Server(
            contender, self.callgrind.wrapper(), start_timeout=START_TIMEOUT, PYTHONHASHSEED="0"
        )
        self.runs: dict[str, list[dict]] = {}

    def count(self, measurement: str, number: int, h2load: str) -> tuple[int, int]:
        """The instructions (all, and the collector's) of *number* units of *measurement*."""
        drive(self.server, measurement, number, h2load)
        return self.callgrind.dump(self.server.pid, f"{measurement} {number}")

    def add(self, measurement: str, counts: tuple[int, int], counted: list) -> None:
        """Keep the pair of runs of *counts* units that counted *counted*."""
        (small, large), ((small_all, small_gc), (large_all, large_gc)) = counts, counted
        run = {
            "counts": [small, large],
            "instructions": [small_all, large_all],
            "collector": [small_gc, large_gc],
            "per_unit": (large_all - small_all) / (large - small),
            "per_unit_without_collector": (
                (large_all - large_gc - small_all + small_gc) / (large - small)
            ),
        }
        self.runs.setdefault(measurement, []).append(run)
        print(
            f"{self.contender} {measurement}: {run['per_unit']:,.0f} per unit, "
            f"{run['per_unit_without_collector']:,.0f} without the collector",
            file=sys.stderr,
        )

    def result(self) -> dict:
        """The medians of each measurement's figures, and its runs."""
        return {
            measurement: {
                **{key: statistics.median(run[key] for run in runs) for key in FIGURES},
                "runs": runs,
            }
            for measurement, runs in self.runs.items()
        }


def compare(args: argparse.Namespace) -> dict:
    """Every load of every contender, and ours over ours-metrics.

    The contenders' servers run side by side (one start-up under callgrind takes a minute)
    and take turns, so that what depends on time (timers firing) falls alike on both.
    """
    h2load = require_tools()
    with ExitStack() as stack:
        contenders = []
        for contender in args.contender:
            counted = Counted(contender)
            stack.callback(counted.server.stop)
            contenders.append(counted)
        for counted in contenders:
            counted.server.ready()
            print(f"{counted.contender}: serving (pid {counted.server.pid})", file=sys.stderr)
            for measurement in args.measurement:
                drive(counted.server, measurement, LOADS[measurement][1][0], h2load)
            counted.callgrind.dump(counted.server.pid, "warm-up")
        for measurement in args.measurement:
            counts = LOADS[measurement][1][1:]
            for _ in range(args.repeat):
                pairs: dict[str, list] = {counted.contender: [] for counted in contenders}
                for number in counts:
                    for counted in contenders:
                        pairs[counted.contender].append(counted.count(measurement, number, h2load))
                for counted in contenders:
                    counted.add(measurement, counts, pairs[counted.contender])
    figures = {counted.contender: counted.result() for counted in contenders}
    ratios: dict = {}
    if len(figures) == 2:
        for measurement in args.measurement:
            ours, metrics = (figures[c][measurement] for c in CONTENDERS)
            ratios[measurement] = {key: ours[key] / metrics[key] for key in FIGURES}
    return {"repeat": args.repeat, "contenders": figures, "metrics": ratios}


def print_table(result: dict) -> None:
    """Instructions per unit of each contender, and ours over ours-metrics."""
    counted = result["contenders"]
    print(f"server instructions per unit (callgrind), medians of {result['repeat']} N1/N2 pairs")
    for key, title in FIGURES.items():
        print(f"\n{title:<30}" + "".join(f"{c:>14}" for c in counted) + f"{'metrics':>10}")
        for measurement, (label, _) in LOADS.items():
            cells = [counted[c].get(measurement, {}).get(key) for c in counted]
            if all(cell is None for cell in cells):
                continue
            ratio = result["metrics"].get(measurement, {}).get(key)
            print(
                f"{label:<30}"
                + "".join(f"{cell:>14,.0f}" if cell is not None else " " * 14 for cell in cells)
                + (f"{ratio:>9.3f}x" if ratio is not None else "")
            )
    print("\nmetrics: ours over ours-metrics, what the metrics leave of a CPU-bound throughput")


def main() -> None:
    """Parse the command line, count and print."""
    parser = argument_parser(__doc__, repeat=2)
    parser.add_argument("--contender", action="append", choices=CONTENDERS)
    parser.add_argument("--measurement", action="append", choices=tuple(LOADS))
    args = parser.parse_args()
    args.contender = args.contender or list(CONTENDERS)
    args.measurement = args.measurement or list(LOADS)
    report(compare(args), args.json, print_table, keep=HERE / "results" / "cost.json")


if __name__ == "__main__":
    main()
