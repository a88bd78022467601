"""HTTP and WebSocket servers side by side: ours, Daphne, uvicorn and a bare reference.

Every contender serves the same two consumers (``benchmarks/apps/``): an HTTP hello through
an ``AsyncHttpConsumer`` and an ``AsyncWebsocketConsumer`` echo.

- **ours**: ``channels serve`` (channels-http + channels-ws), from this interpreter's venv;
- **ours-metrics**: the same with channels-metrics serving Prometheus text beside it, to
  measure what the metrics cost (the table's ``metrics`` column: ours-metrics over ours);
- **daphne** and **uvicorn** (uvloop, httptools) serving Django Channels 4.3, installed by this
  script into ``benchmarks/.venv-asgi-peers/`` when missing;
- **bare**: httptools on uvloop, with a hand-written WebSocket echo: the ceiling of one Python
  process, and the proof that the load generators are faster than every server.

Four measurements, each on a freshly started server pinned to CPU 0 (``taskset -c 0``), the
load generator pinned to CPU 1, everything on 127.0.0.1:

- **http**: ``wrk -t1 -c50 -d10s`` on ``/hello/``: requests per second;
- **echo**: 50 WebSocket connections with 16 messages in flight each: messages per second;
- **pingpong**: one connection, one message in flight: round trips per second;
- **idle**: 5,000 idle WebSocket connections: the server's RSS growth per connection (KiB)
  and connections opened per second.

Usage::

    python benchmarks/http_ws.py                        # everything, 3 runs, medians, a table
    python benchmarks/http_ws.py --json                 # the same as JSON, with every run
                                                        # (always kept in results/http_ws.json)
    python benchmarks/http_ws.py --contender ours --measurement echo --repeat 1

The WebSocket load generator is ``benchmarks/loadgen/ws_load.py``; HTTP load is ``wrk``
(Debian: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from _common import (
    ServerProcess,
    argument_parser,
    channels_serve,
    child_env,
    medians,
    peer_venv,
    report,
    require_two_cpus,
    run_json,
)

from channels_core.testing.processes import free_port, wait_for_port

sys.path.insert(0, str(Path(__file__).resolve().parent / "loadgen"))
from ws_load import cpu_seconds, raise_open_files

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
LOADGEN = HERE / "loadgen" / "ws_load.py"
PEER_VENV = HERE / ".venv-asgi-peers"
PEER_REQUIREMENTS = ["channels==4.3.*", "daphne", "uvicorn[standard]"]
SERVER_CPU, LOAD_CPU = "0", "1"
START_TIMEOUT = 60
RUN_TIMEOUT = 300
IDLE_CONNECTIONS = 5000
CONTENDERS = ("ours", "ours-metrics", "daphne", "uvicorn", "bare")
MEASUREMENTS = ("http", "echo", "pingpong", "idle")
# The figure each measurement reports, its label, the goal for ours, and whether less is better.
FIGURES = {
    "http": ("requests_per_second", "HTTP hello, requests/s", 15_000, False),
    "echo": ("messages_per_second", "WebSocket echo, messages/s", 30_000, False),
    "pingpong": ("messages_per_second", "ping-pong, round trips/s", 6_000, False),
    "idle": ("kib_per_connection", "idle socket, KiB each", 12, True),
    "opened": ("connections_per_second", "connections opened/s", None, False),
}


def peer_bin() -> Path:
    """The bin folder of the Daphne/uvicorn virtualenv, creating it when missing."""
    return peer_venv(PEER_VENV, PEER_REQUIREMENTS, needs=("uvicorn", "daphne"))


def require_tools() -> str:
    """The path of ``wrk`` and checks that ``taskset`` is there, or a clear exit."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "wrk is not installed, and the HTTP measurement needs it: install it with "
            "`apt-get install -y wrk` (Debian/Ubuntu) or from https://github.com/wg/wrk."
        )
    require_two_cpus()
    return wrk


def server_command(contender: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment that start *contender* on *port*."""
    if contender in ("ours", "ours-metrics"):
        endpoint = f"tcp:{port}:interface=127.0.0.1"
        command = channels_serve(APPS / "ours", "bench_ours.settings", "--endpoint", endpoint)
        return command, {"BENCH_METRICS": "1"} if contender == "ours-metrics" else {}
    peer_path = {"PYTHONPATH": str(APPS / "peer")}
    if contender == "daphne":
        command = [str(peer_bin() / "daphne"), "-b", "127.0.0.1", "-p", str(port), "-v", "0"]
        return [*command, "bench_peer.asgi:application"], peer_path
    if contender == "uvicorn":
        command = [str(peer_bin() / "uvicorn"), "--host", "127.0.0.1", "--port", str(port)]
        options = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        return [*command, *options, "--log-level", "warning", "bench_peer.asgi:application"], (
            peer_path
        )
    return [sys.executable, str(APPS / "bare.py"), str(port)], {}


class Server(ServerProcess):
    """One contender's server process, pinned to the server CPU, stopped on exit.

    *wrapper* is a command that runs the server (``valgrind --tool=callgrind ...``; its
    process id is the server's), given *start_timeout* seconds to serve; *env* is added to
    the server's environment.
    """

    def __init__(
        self,
        contender: str,
        wrapper: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT,
        **env: str,
    ) -> None:
        self.contender = contender
        self.port = free_port()
        self.start_timeout = start_timeout
        command, extra_env = server_command(contender, self.port)
        super().__init__(
            ["taskset", "-c", SERVER_CPU, *wrapper, *command],
            env=child_env(**extra_env, **env),
            log=HERE / "results" / f"{contender}.log",
        )

    def ready(self) -> None:
        """Wait for the port, then check that ``/hello/`` answers ``hello``."""
        wait_for_port(self.port, timeout=self.start_timeout)
        url = f"http://127.0.0.1:{self.port}/hello/"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        if body != b"hello":
            raise RuntimeError(f"{self.contender} answered {body!r} to /hello/, not b'hello'.")


def seconds(value: str) -> float:
    """A wrk duration (``812.00us``, ``1.20ms``, ``2.00s``) in seconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        # wrk prints something else (nan, or nothing) when a run has no latency samples.
        return float("nan")
    number, unit = match.groups()
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def measure_http(server: Server, wrk: str, duration: int) -> dict:
    """``wrk -t1 -c50`` on ``/hello/``: requests per second and latency percentiles."""
    started = cpu_seconds(server.pid)
    done = subprocess.run(
        [
            *("taskset", "-c", LOAD_CPU, wrk, "-t1", "-c50", f"-d{duration}s", "--latency"),
            f"http://127.0.0.1:{server.port}/hello/",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    output = done.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors against {server.contender}:\n{output}")
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "latency_p50_ms": seconds(re.search(r"50%\s+(\S+)", output).group(1)) * 1e3,
        "latency_p99_ms": seconds(re.search(r"99%\s+(\S+)", output).group(1)) * 1e3,
        "server_cpu": (cpu_seconds(server.pid) - started) / duration,
    }


def run_loadgen(server: Server, *arguments: str) -> dict:
    """Run the WebSocket load generator on the load CPU and return its JSON."""
    result = run_json(
        [
            *("taskset", "-c", LOAD_CPU, sys.executable, str(LOADGEN), *arguments),
            *("--port", str(server.port), "--server-pid", str(server.pid)),
        ],
        f"The load generator's run against {server.contender}",
        RUN_TIMEOUT,
    )
    if result.get("echoed") is False:
        raise RuntimeError(f"{server.contender} did not echo the message back unchanged.")
    return result


def measure(contender: str, measurement: str, args: argparse.Namespace, wrk: str) -> dict:
    """One measurement on a freshly started server."""
    with Server(contender) as server:
        if measurement == "http":
            return measure_http(server, wrk, args.http_duration)
        if measurement == "idle":
            return run_loadgen(server, "idle", "--connections", str(IDLE_CONNECTIONS))
        in_flight = ["--connections", "50", "--in-flight", "16"]
        if measurement == "pingpong":
            in_flight = ["--connections", "1", "--in-flight", "1"]
        return run_loadgen(server, "echo", *in_flight, "--duration", str(args.ws_duration))


def compare(args: argparse.Namespace) -> dict:
    """Every measurement of every contender, *repeat* times, alternating; medians and ratios."""
    wrk = require_tools()
    raise_open_files(IDLE_CONNECTIONS + 200)
    (HERE / "results").mkdir(exist_ok=True)
    runs: dict = {c: {m: [] for m in args.measurement} for c in args.contender}
    for repetition in range(args.repeat):
        for measurement in args.measurement:
            for contender in args.contender:
                print(f"run {repetition + 1}: {contender} {measurement}", file=sys.stderr)
                runs[contender][measurement].append(measure(contender, measurement, args, wrk))
                time.sleep(0.5)
    median = {c: {m: medians(results) for m, results in by.items()} for c, by in runs.items()}
    return {"repeat": args.repeat, "runs": runs, "median": median}


def figure(medians: dict, contender: str, row: str) -> float | None:
    """The headline figure of *row* for *contender*, or None when it was not measured."""
    key = FIGURES[row][0]
    measurement = "idle" if row == "opened" else row
    return medians.get(contender, {}).get(measurement, {}).get(key)


def print_table(result: dict) -> None:
    """The side-by-side table: each contender, then ours over Daphne and over uvicorn."""
    medians = result["median"]
    contenders = [c for c in CONTENDERS if c in medians]
    print(f"medians of {result['repeat']} runs each")
    header = f"{'measurement':<30}" + "".join(f"{c:>10}" for c in contenders)
    print(header + f"{'ours/daphne':>13}{'ours/uvicorn':>14}{'metrics':>9}{'goal':>8}")
    for row, (_, label, goal, _) in FIGURES.items():
        values = [figure(medians, c, row) for c in contenders]
        if all(value is None for value in values):
            continue
        cells = "".join(f"{v:>10,.1f}" if row == "idle" else f"{v:>10,.0f}" for v in values)
        ours = figure(medians, "ours", row)
        ratios = ""
        for peer, width in (("daphne", 13), ("uvicorn", 14)):
            other = figure(medians, peer, row)
            ratios += f"{ours / other:>{width - 1}.2f}x" if ours and other else " " * width
        # What channels-metrics costs: ours-metrics over ours (1.00x is free).
        metrics = figure(medians, "ours-metrics", row)
        ratios += f"{metrics / ours:>8.2f}x" if ours and metrics else " " * 9
        print(f"{label:<30}{cells}{ratios}{goal if goal is not None else '':>8}")
    print("\nCPU use during the run (server on CPU 0 / WebSocket generator on CPU 1):")
    for measurement in ("http", "echo", "pingpong"):
        cells = []
        for contender in contenders:
            result_medians = medians[contender].get(measurement)
            if result_medians:
                load = result_medians.get("generator_cpu")
                load_text = f"/{load:.0%}" if load is not None else ""
                cells.append(f"{contender} {result_medians['server_cpu']:.0%}{load_text}")
        if cells:
            print(f"  {measurement:<9}" + ", ".join(cells))


def main() -> None:
    """Parse the command line, run the comparison and print it."""
    parser = argument_parser(__doc__, repeat=3)
    parser.add_argument("--contender", action="append", choices=CONTENDERS)
    parser.add_argument("--measurement", action="append", choices=MEASUREMENTS)
    parser.add_argument("--http-duration", type=int, default=10, help="wrk seconds (10)")
    parser.add_argument("--ws-duration", type=float, default=5.0, help="echo seconds (5)")
    args = parser.parse_args()
    args.contender = args.contender or list(CONTENDERS)
    args.measurement = args.measurement or list(MEASUREMENTS)
    # Every run is kept (git-ignored) so a table can be re-read or checked later.
    report(compare(args), args.json, print_table, keep=HERE / "results" / "http_ws.json")


if __name__ == "__main__":
    main()
