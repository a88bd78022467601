"""Throughput with several server processes: ``channels serve --processes 1`` and ``2`` beside
uvicorn ``--workers 2`` and Granian ``--workers 2``, on consumers that burn CPU.

Every contender serves the same two consumers (``benchmarks/apps/work/``), each spending about
0.5 ms of CPU (SHA-256 over 1 KiB blocks, calibrated once by this script at its start and
passed to every server, so each does exactly the same work) per HTTP request and per
WebSocket message, so that the servers and not the load generators are the bottleneck:

- **ours-1**, **ours-2**: ``channels serve --processes 1`` and ``--processes 2`` (channels-http
  + channels-ws, in-process mode, an ``ipc`` layer in a fresh temporary directory per server);
- **ours-2r**: ``--processes 2 --reuse-port``: a ``SO_REUSEPORT`` socket per process, the
  kernel spreading connections by address hash, instead of the one socket ours-2's share;
- **uvicorn-2**: ``uvicorn --workers 2`` (uvloop, httptools) and **granian-2**:
  ``granian --interface asgi --workers 2``, both serving Django Channels 4.3, installed by this
  script into ``benchmarks/.venv-asgi-workers/`` when missing.

Two measurements, each on a freshly started server, everything on 127.0.0.1. Nothing is
pinned: the server processes need both CPUs, and the load generator shares them.

- **http**: ``wrk -t1 -c64 -d10s`` on ``/work/``: requests per second;
- **echo**: ``loadgen/ws_load.py echo`` on ``/echo/``, 64 connections with 4 messages in
  flight each, 1 s warm-up, 5 s measured: messages per second.

Usage::

    python benchmarks/processes.py                      # everything, 3 runs, medians, a table
    python benchmarks/processes.py --json               # the same as JSON, with every run
                                                        # (always kept in results/processes.json)
    python benchmarks/processes.py --contender ours-2 --measurement echo --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import (
    ServerProcess,
    argument_parser,
    channels_serve,
    child_env,
    medians,
    peer_venv,
    report,
    run_json,
)
from http_ws import require_tools, seconds

from channels_core.testing.processes import free_port, wait_for_port

HERE = Path(__file__).resolve().parent
WORK_APP = HERE / "apps" / "work"
sys.path.insert(0, str(WORK_APP))
import cpu_work  # noqa: E402
from ws_load import cpu_seconds  # noqa: E402  (http_ws put loadgen/ on the path)

LOADGEN = HERE / "loadgen" / "ws_load.py"
PEER_VENV = HERE / ".venv-asgi-workers"
# Installed in two steps, so that uvicorn still runs when Granian fails to install.
PEER_REQUIREMENTS = {"uvicorn": ["channels==4.3.*", "uvicorn[standard]"], "granian": ["granian"]}
PEER_APP = "work_peer.asgi:application"
CONTENDERS = ("ours-1", "ours-2", "ours-2r", "uvicorn-2", "granian-2")
MEASUREMENTS = ("http", "echo")
WORKERS = {"ours-1": 1, "ours-2": 2, "ours-2r": 2, "uvicorn-2": 2, "granian-2": 2}
FIGURES = {
    "http": ("requests_per_second", "HTTP /work/, requests/s"),
    "echo": ("messages_per_second", "WebSocket echo, messages/s"),
}
RATIOS = (
    ("ours-2", "ours-1"),
    ("ours-2", "uvicorn-2"),
    ("ours-2", "granian-2"),
    ("ours-2r", "ours-2"),
)
START_TIMEOUT = 60
SETTLE_TIMEOUT = 20
RUN_TIMEOUT = 120


class Unavailable(Exception):
    """A contender that cannot run on this machine, and why."""


def peer_bin(peer: str) -> Path:
    """The bin folder of the peers' virtualenv with *peer* installed, installing it when
    missing; :class:`Unavailable` with the reason when that fails."""
    try:
        return peer_venv(PEER_VENV, PEER_REQUIREMENTS[peer], needs=(peer,))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise Unavailable(
            f"installing {' '.join(PEER_REQUIREMENTS[peer])} into {PEER_VENV} failed: {error} "
            "(pip's own message is above)"
        ) from error


def server_command(contender: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment that start *contender* on *port*."""
    if contender.startswith("ours"):
        endpoint = f"tcp:{port}:interface=127.0.0.1"
        processes = str(WORKERS[contender])
        command = channels_serve(
            WORK_APP, "work_ours.settings", "--endpoint", endpoint, "--processes", processes
        )
        if contender == "ours-2r":  # a SO_REUSEPORT socket per process instead of one shared
            command.append("--reuse-port")
        return command, {}
    peer_path = {"PYTHONPATH": str(WORK_APP)}
    if contender == "uvicorn-2":
        command = [str(peer_bin("uvicorn") / "uvicorn"), "--host", "127.0.0.1", "--port", str(port)]
        options = ["--workers", "2", "--loop", "uvloop", "--http", "httptools"]
        options += ["--no-access-log", "--log-level", "warning"]
        return [*command, *options, PEER_APP], peer_path
    command = [str(peer_bin("granian") / "granian"), "--interface", "asgi", "--workers", "2"]
    options = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return [*command, *options, PEER_APP], peer_path


def process_tree(root: int) -> list[int]:
    """*root* and every process descended from it, from ``/proc``."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = [root]
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """The CPU seconds each of *pids* used so far (processes that are gone are left out)."""
    used = {}
    for pid in pids:
        try:
            used[pid] = cpu_seconds(pid)
        except OSError:
            continue
    return used


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended: the load generators'."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Server(ServerProcess):
    """One contender's server (a parent and its workers), in its own session, stopped on exit
    with every process of that session."""

    def __init__(self, contender: str, iterations: int) -> None:
        self.contender = contender
        self.port = free_port()
        self.ipc_path = None
        command, extra_env = server_command(contender, self.port)
        if contender.startswith("ours"):
            self.ipc_path = tempfile.mkdtemp(prefix="channels-bench-ipc-")
            extra_env["BENCH_IPC_PATH"] = self.ipc_path
        super().__init__(
            command,
            env=child_env(BENCH_WORK_ITERATIONS=str(iterations), **extra_env),
            log=HERE / "results" / f"processes-{contender}.log",
        )

    def ready(self) -> None:
        """Wait for the port, check that ``/work/`` answers a digest, then for every worker
        process to be there and done starting (the server's CPU use settled)."""
        wait_for_port(self.port, timeout=START_TIMEOUT)
        url = f"http://127.0.0.1:{self.port}/work/"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        if re.fullmatch(rb"[0-9a-f]{64}", body) is None:
            raise RuntimeError(f"{self.contender} answered {body[:100]!r} to /work/.")
        deadline = time.monotonic() + SETTLE_TIMEOUT
        workers = WORKERS[self.contender]
        while time.monotonic() < deadline:
            pids = process_tree(self.pid)
            before = sum(cpu_by_pid(pids).values())
            time.sleep(0.5)
            busy = (sum(cpu_by_pid(pids).values()) - before) / 0.5
            if len(pids) - (workers > 1) >= workers and busy < 0.1:
                return
        raise RuntimeError(
            f"{self.contender}'s {workers} worker process(es) did not all start and settle "
            f"within {SETTLE_TIMEOUT} s (processes: {process_tree(self.pid)})."
        )

    def stop(self) -> None:
        """Stop the parent (which stops its workers), then anything left of its session."""
        super().stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.ipc_path is not None:
            shutil.rmtree(self.ipc_path, ignore_errors=True)


def run_load(server: Server, measurement: str, args: argparse.Namespace, wrk: str) -> dict:
    """Run *measurement*'s load generator against *server*; its figures."""
    if measurement == "http":
        done = subprocess.run(
            [
                *(wrk, "-t1", "-c64", f"-d{args.http_duration}s", "--latency"),
                f"http://127.0.0.1:{server.port}/work/",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=args.http_duration + 60,
        )
        output = done.stdout
        if re.search(r"Non-2xx or 3xx responses: (\d+)", output) or "Socket errors" in output:
            raise RuntimeError(f"wrk saw errors against {server.contender}:\n{output}")
        return {
            "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "latency_p50_ms": seconds(re.search(r"50%\s+(\S+)", output).group(1)) * 1e3,
            "latency_p99_ms": seconds(re.search(r"99%\s+(\S+)", output).group(1)) * 1e3,
        }
    result = run_json(
        [
            *(sys.executable, LOADGEN, "echo", "--port", server.port, "--path", "/echo/"),
            *("--connections", "64", "--in-flight", "4", "--duration", args.ws_duration),
        ],
        f"The load generator's run against {server.contender}",
        RUN_TIMEOUT,
    )
    if result.pop("echoed") is False:
        raise RuntimeError(f"{server.contender} did not echo the message back unchanged.")
    result.pop("server_cpu")
    return result


def measure(contender: str, measurement: str, args: argparse.Namespace, wrk: str) -> dict:
    """One measurement on a freshly started server, with the CPU its processes and the load
    generator used over the whole load run (for echo, warm-up and connecting included)."""
    with Server(contender, args.iterations) as server:
        pids = process_tree(server.pid)
        server_before, load_before = cpu_by_pid(pids), children_cpu()
        started = time.perf_counter()
        result = run_load(server, measurement, args, wrk)
        elapsed = time.perf_counter() - started
        server_after = cpu_by_pid(pids)
        load_cpu = (children_cpu() - load_before) / elapsed
    per_process = sorted(
        (server_after[pid] - server_before[pid]) / elapsed
        for pid in server_after
        if pid in server_before
    )
    figure = result[FIGURES[measurement][0]]
    result.update(
        per_server_cpu_second=figure / sum(per_process) if sum(per_process) else None,
        server_cpu=sum(per_process),
        process_cpu=[round(share, 3) for share in reversed(per_process)],
        load_cpu=load_cpu,
    )
    return result


def load_average() -> float:
    """The 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def compare(args: argparse.Namespace) -> dict:
    """Every measurement of every contender, *repeat* times, alternating; medians and ratios.
    A contender that cannot run is reported with the reason, and the others go on."""
    wrk = require_tools()
    (HERE / "results").mkdir(exist_ok=True)
    started_load = load_average()
    runs: dict = {c: {m: [] for m in args.measurement} for c in args.contender}
    failed: dict[str, str] = {}
    for repetition in range(args.repeat):
        for measurement in args.measurement:
            for contender in args.contender:
                if contender in failed:
                    continue
                print(f"run {repetition + 1}: {contender} {measurement}", file=sys.stderr)
                try:
                    runs[contender][measurement].append(measure(contender, measurement, args, wrk))
                except Unavailable as error:
                    failed[contender] = str(error)
                except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                    print(f"  {contender} {measurement} failed: {error}", file=sys.stderr)
                    runs[contender][measurement].append({"error": str(error)})
                time.sleep(0.5)
    median: dict = {}
    for contender, by_measurement in runs.items():
        for measurement, results in by_measurement.items():
            good = [run for run in results if "error" not in run]
            if good:
                median.setdefault(contender, {})[measurement] = medians(good)
    ratio: dict = {}
    for measurement in args.measurement:
        key = FIGURES[measurement][0]
        for ours, other in RATIOS:
            ours_value = median.get(ours, {}).get(measurement, {}).get(key)
            other_value = median.get(other, {}).get(measurement, {}).get(key)
            if ours_value and other_value:
                ratio.setdefault(f"{ours}/{other}", {})[measurement] = ours_value / other_value
    return {
        "repeat": args.repeat,
        "work": {"iterations": args.iterations, "milliseconds": args.work_ms},
        "load_average": {"start": started_load, "end": load_average()},
        "unavailable": failed,
        "runs": runs,
        "median": median,
        "ratio": ratio,
    }


def print_table(result: dict) -> None:
    """Each contender's medians, then the ratios of ours-2 to the others, then CPU use."""
    median, ratio = result["median"], result["ratio"]
    contenders = [c for c in CONTENDERS if c in result["runs"]]
    work = result["work"]
    print(
        f"medians of {result['repeat']} runs each; work per request and per message "
        f"{work['milliseconds']:.3f} ms ({work['iterations']} SHA-256 updates of 1 KiB); "
        f"load average {result['load_average']['start']:.2f} at the start, "
        f"{result['load_average']['end']:.2f} at the end"
    )
    pairs = [f"{ours}/{other}" for ours, other in RATIOS if f"{ours}/{other}" in ratio]
    header = f"{'measurement':<28}" + "".join(f"{c:>11}" for c in contenders)
    print(header + "".join(f"{pair:>18}" for pair in pairs))
    for measurement in [
        m for m in MEASUREMENTS if any(m in runs for runs in result["runs"].values())
    ]:
        key, label = FIGURES[measurement]
        cells = ""
        for contender in contenders:
            value = median.get(contender, {}).get(measurement, {}).get(key)
            cells += f"{value:>11,.0f}" if value is not None else f"{'-':>11}"
        ratios = "".join(
            f"{ratio[pair][measurement]:>17.2f}x" if measurement in ratio[pair] else f"{'':>18}"
            for pair in pairs
        )
        print(f"{label:<28}{cells}{ratios}")
    print("goal: ours-2/ours-1 at least 1.8x, and ours-2 ahead of uvicorn-2 and granian-2")
    print(
        "\nrun by run: the figure (server CPU in cores' worth: all its processes [each]); "
        "medians of the load generator's CPU and of the figure per second of server CPU"
    )
    for measurement in MEASUREMENTS:
        key = FIGURES[measurement][0]
        for contender in contenders:
            runs = result["runs"][contender].get(measurement)
            if not runs:
                continue
            cells = []
            for run in runs:
                if "error" in run:
                    cells.append("failed")
                    continue
                shares = " ".join(f"{share:.2f}" for share in run["process_cpu"])
                cells.append(f"{run[key]:,.0f} ({run['server_cpu']:.2f} [{shares}])")
            line = f"  {measurement:<5} {contender:<10} {', '.join(cells)}"
            figures = median.get(contender, {}).get(measurement)
            if figures:
                line += (
                    f"; load {figures['load_cpu']:.2f}, "
                    f"{figures['per_server_cpu_second']:,.0f} per CPU-second"
                )
            print(line)
    for contender, reason in result["unavailable"].items():
        print(f"  {contender} could not run: {reason}")
    for contender, by_measurement in result["runs"].items():
        for measurement, runs in by_measurement.items():
            for run in runs:
                if "error" in run:
                    print(f"  {contender} {measurement} failed: {run['error'].splitlines()[0]}")


def calibrate(iterations: int | None) -> tuple[int, float]:
    """The iterations of work per call (calibrated here unless given) and the median
    milliseconds one call takes in this process."""
    iterations = iterations or cpu_work.calibrate()
    timings = []
    for _ in range(200):
        started = time.perf_counter()
        cpu_work.burn(iterations)
        timings.append(time.perf_counter() - started)
    return iterations, statistics.median(timings) * 1e3


def main() -> None:
    """Parse the command line, run the comparison and print it."""
    parser = argument_parser(__doc__, repeat=3)
    parser.add_argument("--contender", action="append", choices=CONTENDERS)
    parser.add_argument("--measurement", action="append", choices=MEASUREMENTS)
    parser.add_argument("--http-duration", type=int, default=10, help="wrk seconds (10)")
    parser.add_argument("--ws-duration", type=float, default=5.0, help="echo seconds (5)")
    parser.add_argument(
        "--iterations", type=int, help="SHA-256 updates per call (default: calibrated to 0.5 ms)"
    )
    args = parser.parse_args()
    args.contender = args.contender or list(CONTENDERS)
    args.measurement = args.measurement or list(MEASUREMENTS)
    args.iterations, args.work_ms = calibrate(args.iterations)
    # Every run is kept (git-ignored) so a table can be re-read or checked later.
    report(compare(args), args.json, print_table, keep=HERE / "results" / "processes.json")


if __name__ == "__main__":
    main()
