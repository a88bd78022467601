"""HTTP/2 servers side by side: ours (channels-http2), Daphne and Hypercorn, measured with h2load.

Every contender serves the same ``GET /hello/`` (an ``AsyncHttpConsumer`` answering ``hello``,
``benchmarks/apps/``):

- **ours-h2**: ``channels serve --protocol http --protocol websocket --protocol http2``
  (``apps/ours``), HTTP/2 with prior knowledge in cleartext (h2c) on its ``tcp:`` endpoint;
- **ours-h2-tls**: the same server on an ``ssl:`` endpoint, h2 chosen by ALPN;
- **ours-h1**: the same server as ours-h2, loaded with HTTP/1.1 by the same tool;
- **daphne-h2**: Daphne 4.2 with ``twisted[http2,tls]`` serving Django Channels 4.3
  (``apps/peer``) on an ``ssl:`` endpoint: Daphne speaks HTTP/2 over TLS only;
- **hypercorn-h2** and **hypercorn-h2-tls**: Hypercorn serving the same Channels 4.3 app, in
  cleartext (prior knowledge) and over TLS (ALPN).

The peers are installed by this script into ``benchmarks/.venv-h2-peers/`` when missing. TLS
uses a self-signed certificate made with ``openssl`` in a temporary folder for the session.

Each run starts a fresh server pinned to CPU 0 (``taskset -c 0``), checks with ``curl`` that
``/hello/`` answers ``hello`` over the contender's protocol, then runs h2load pinned to CPU 1
for ``--duration`` seconds after 1 s of warm-up, everything on 127.0.0.1: HTTP/2 with
``-c 10 -m 5`` (10 connections, 5 streams in flight on each), HTTP/1.1 with
``--h1 -c 50 -m 1`` (50 connections, one request in flight on each): 50 requests in flight
either way. Any failed, errored or timed-out request, any non-2xx status, or another
protocol than the one intended fails the run. Requests per second, medians of ``--repeat``
runs, the contenders alternating within each repetition.

Usage::

    python benchmarks/http2.py                          # everything, 3 runs, medians, a table
    python benchmarks/http2.py --json                   # the same as JSON, with every run
                                                        # (always kept in results/http2.json)
    python benchmarks/http2.py --contender ours-h2 --contender ours-h1 --repeat 1

It needs h2load (Debian: ``apt-get install -y nghttp2-client``), curl, openssl and taskset,
and two CPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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
from http_ws import seconds
from processes import children_cpu, cpu_by_pid, load_average, process_tree

from channels_core.testing.processes import free_port, wait_for_port

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
PEER_VENV = HERE / ".venv-h2-peers"
PEER_REQUIREMENTS = ["channels==4.3.*", "daphne==4.2.*", "twisted[http2,tls]", "hypercorn"]
PEER_APP = "bench_peer.asgi:application"
SERVER_CPU, LOAD_CPU = "0", "1"
START_TIMEOUT = 60
WARM_UP = 1
HTTP2_LOAD = ("-c", "10", "-m", "5")
HTTP1_LOAD = ("--h1", "-c", "50", "-m", "1")
# Hypercorn closes an HTTP/2 connection after 1,000 requests by default, and h2load counts
# the requests it had lined up on that connection as failed; ours and Daphne set no such
# limit, so Hypercorn's is lifted (a TOML file: its command line has no flag for it).
HYPERCORN_CONFIG = "keep_alive_max_requests = 1_000_000_000\n"
# (numerator, denominator, goal): how ours compares with the peers and with HTTP/1.1.
RATIOS = (
    ("ours-h2-tls", "daphne-h2", 5.0),
    ("ours-h2", "hypercorn-h2", 2.0),
    ("ours-h2-tls", "hypercorn-h2-tls", None),
    ("ours-h2", "ours-h1", None),
)
OURS_DISTRIBUTIONS = ("channels-core", "channels-http", "channels-http2", "h2", "twisted", "uvloop")
PEER_DISTRIBUTIONS = ("channels", "daphne", "hypercorn", "django", "h2", "twisted", "pyopenssl")
VERSIONS_CODE = """\
import importlib.metadata, json, sys
def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
print(json.dumps({name: version(name) for name in sys.argv[1:]}))
"""


@dataclass(frozen=True)
class Contender:
    """What runs (*server*: ours, daphne or hypercorn), over TLS or not, in HTTP/2 or 1.1."""

    server: str
    tls: bool
    http1: bool = False

    @property
    def scheme(self) -> str:
        """The URL scheme h2load and curl are given."""
        return "https" if self.tls else "http"

    @property
    def protocol(self) -> str:
        """The application protocol h2load must report: what the run is meant to measure."""
        if self.http1:
            return "http/1.1"
        return "h2" if self.tls else "h2c"

    @property
    def description(self) -> str:
        """The protocol and the load, for the table."""
        if self.http1:
            return "HTTP/1.1, 50 conn."
        return f"{'h2, TLS' if self.tls else 'h2c'}, 10 conn. x 5"


CONTENDERS = {
    "ours-h2": Contender("ours", tls=False),
    "ours-h2-tls": Contender("ours", tls=True),
    "ours-h1": Contender("ours", tls=False, http1=True),
    "daphne-h2": Contender("daphne", tls=True),
    "hypercorn-h2": Contender("hypercorn", tls=False),
    "hypercorn-h2-tls": Contender("hypercorn", tls=True),
}


class Unavailable(Exception):
    """A contender that cannot run on this machine, and why."""


@dataclass(frozen=True)
class Scratch:
    """The session's temporary folder: the self-signed certificate and Hypercorn's config."""

    folder: Path

    @property
    def key(self) -> Path:
        """The private key."""
        return self.folder / "key.pem"

    @property
    def certificate(self) -> Path:
        """The self-signed certificate for 127.0.0.1."""
        return self.folder / "cert.pem"

    @property
    def hypercorn_config(self) -> Path:
        """Hypercorn's TOML configuration."""
        return self.folder / "hypercorn.toml"

    def fill(self) -> None:
        """Make the key and certificate with ``openssl``, and write Hypercorn's config."""
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-keyout", str(self.key), "-out", str(self.certificate)),
                *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        self.hypercorn_config.write_text(HYPERCORN_CONFIG)


def peer_bin() -> Path:
    """The bin folder of the Daphne/Hypercorn virtualenv, installing it when missing;
    :class:`Unavailable` with the reason when that fails."""
    try:
        return peer_venv(PEER_VENV, PEER_REQUIREMENTS, needs=("daphne", "hypercorn"))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise Unavailable(
            f"installing {' '.join(PEER_REQUIREMENTS)} into {PEER_VENV} failed: {error} "
            "(pip's own message is above)"
        ) from error


def require_tools() -> str:
    """The path of ``h2load``, after checking for curl, openssl and taskset; a clear exit
    naming the package to install when one is missing."""
    for tool, package in (("curl", "curl"), ("openssl", "openssl")):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is not installed: install it with `apt-get install -y {package}`."
            )
    h2load = shutil.which("h2load")
    if h2load is None:
        raise SystemExit(
            "h2load is not installed, and every measurement needs it: install it with "
            "`apt-get install -y nghttp2-client` (Debian/Ubuntu; the package is nghttp2 on "
            "Fedora and Homebrew)."
        )
    require_two_cpus()
    return h2load


def ssl_endpoint(port: int, scratch: Scratch) -> str:
    """A Twisted ``ssl:`` endpoint on 127.0.0.1 with the session's certificate."""
    return f"ssl:{port}:interface=127.0.0.1:privateKey={scratch.key}:certKey={scratch.certificate}"


def server_command(
    contender: Contender, port: int, scratch: Scratch
) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment that start *contender* on *port*."""
    if contender.server == "ours":
        protocols = ("--protocol", "http", "--protocol", "websocket", "--protocol", "http2")
        endpoint = (
            ssl_endpoint(port, scratch) if contender.tls else f"tcp:{port}:interface=127.0.0.1"
        )
        command = channels_serve(
            APPS / "ours", "bench_ours.settings", *protocols, "--endpoint", endpoint
        )
        return command, {}
    peer_path = {"PYTHONPATH": str(APPS / "peer")}
    if contender.server == "daphne":
        command = [str(peer_bin() / "daphne"), "-v", "0", "-e", ssl_endpoint(port, scratch)]
        return [*command, PEER_APP], peer_path
    command = [str(peer_bin() / "hypercorn"), "--config", str(scratch.hypercorn_config)]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    if contender.tls:
        command += ["--certfile", str(scratch.certificate), "--keyfile", str(scratch.key)]
    return [*command, PEER_APP], peer_path


class Server(ServerProcess):
    """One contender's server, pinned to the server CPU, stopped on exit with every process
    of its session (Hypercorn serves from a child process)."""

    def __init__(self, name: str, scratch: Scratch) -> None:
        self.name = name
        self.contender = CONTENDERS[name]
        self.port = free_port()
        command, extra_env = server_command(self.contender, self.port, scratch)
        super().__init__(
            ["taskset", "-c", SERVER_CPU, *command],
            env=child_env(**extra_env),
            log=HERE / "results" / f"http2-{name}.log",
        )

    @property
    def url(self) -> str:
        """The URL of the hello consumer."""
        return f"{self.contender.scheme}://127.0.0.1:{self.port}/hello/"

    def ready(self) -> None:
        """Wait for the port, then check with curl that ``/hello/`` answers ``hello`` in the
        HTTP version this contender is measured with."""
        wait_for_port(self.port, timeout=START_TIMEOUT)
        if self.contender.http1:
            version, expected = "--http1.1", "1.1"
        elif self.contender.tls:
            version, expected = "--http2", "2"  # offered by ALPN, with http/1.1
        else:
            version, expected = "--http2-prior-knowledge", "2"
        command = ["curl", "-sS", "-k", version, "--max-time", str(START_TIMEOUT)]
        command += ["-w", r"\n%{http_version}", self.url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT + 10)
        if done.returncode or done.stdout != f"hello\n{expected}":
            raise RuntimeError(
                f"{self.name} did not answer hello over HTTP/{expected}: `{' '.join(command)}` "
                f"exited {done.returncode} with {done.stdout!r} (HTTP version last) "
                f"and {done.stderr!r}."
            )

    def stop(self) -> None:
        """Stop the server, then anything left of its session."""
        super().stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def parse_h2load(output: str, protocol: str) -> dict:
    """Requests per second and latency from h2load's report; RuntimeError when it is not
    there, or when any request did not succeed, any status was not 2xx, or the connections
    spoke another *protocol* than intended."""
    finished = re.search(r"finished in \S+, ([\d.]+) req/s", output)  # 2.05s, 766.90ms
    requests = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        output,
    )
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    spoken = re.search(r"Application protocol: (\S+)", output)
    latency = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", output)
    if not (finished and requests and statuses and spoken and latency):
        raise RuntimeError("h2load's report is missing or incomplete")
    _, _, _, succeeded, failed, errored, timeout = map(int, requests.groups())
    ok, *not_ok = map(int, statuses.groups())
    if failed or errored or timeout or any(not_ok) or not ok or not succeeded:
        raise RuntimeError("h2load saw requests that did not succeed with a 2xx status")
    if spoken.group(1) != protocol:
        raise RuntimeError(f"h2load spoke {spoken.group(1)}, not {protocol}")
    minimum, maximum, mean, deviation = (seconds(value) * 1e3 for value in latency.groups())
    tls = re.search(r"TLS Protocol: (\S+)\nCipher: (\S+)", output)
    return {
        "requests_per_second": float(finished.group(1)),
        "requests": succeeded,
        "latency_min_ms": minimum,
        "latency_mean_ms": mean,
        "latency_sd_ms": deviation,
        "latency_max_ms": maximum,
        "protocol": spoken.group(1),
        "tls": " ".join(tls.groups()) if tls else None,
    }


def run_h2load(server: Server, h2load: str, duration: int) -> dict:
    """h2load on the load CPU against *server*: its figures, and the CPU the server (all its
    processes) and h2load used, in cores' worth, over the whole run (warm-up included)."""
    load = HTTP1_LOAD if server.contender.http1 else HTTP2_LOAD
    command = [*("taskset", "-c", LOAD_CPU, h2load), *load, "-D", str(duration)]
    command += [f"--warm-up-time={WARM_UP}", server.url]
    pids = process_tree(server.pid)
    server_before, load_before = cpu_by_pid(pids), children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    elapsed = time.perf_counter() - started
    server_after = cpu_by_pid(pids)
    output = done.stdout + done.stderr
    try:
        if done.returncode:
            raise RuntimeError(f"h2load exited {done.returncode}")
        result = parse_h2load(output, server.contender.protocol)
    except RuntimeError as error:
        # The command and h2load's own report, so that a failure can be read and repeated.
        report_lines = [line for line in output.splitlines() if "progress:" not in line]
        raise RuntimeError(
            f"{error} against {server.name}: `{' '.join(command)}`\n" + "\n".join(report_lines)
        ) from None
    used = sum(
        server_after[pid] - server_before[pid] for pid in server_after if pid in server_before
    )
    result.update(server_cpu=used / elapsed, load_cpu=(children_cpu() - load_before) / elapsed)
    return result


def versions(python: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    """The installed versions of the distributions *names* under the interpreter *python*."""
    return run_json([python, "-c", VERSIONS_CODE, *names], f"Reading versions with {python}", 60)


def utc_now() -> str:
    """The time now, UTC, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def compare(args: argparse.Namespace) -> dict:
    """Every contender, *repeat* times, alternating; medians and ratios. A contender that
    cannot run is reported with the reason, and the others go on."""
    h2load = require_tools()
    (HERE / "results").mkdir(exist_ok=True)
    started_load, started_at = load_average(), utc_now()
    runs: dict = {name: [] for name in args.contender}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="channels-bench-h2-") as folder:
        scratch = Scratch(Path(folder))
        scratch.fill()
        for repetition in range(args.repeat):
            for name in args.contender:
                if name in failed:
                    continue
                print(f"run {repetition + 1}: {name}", file=sys.stderr)
                try:
                    with Server(name, scratch) as server:
                        runs[name].append(run_h2load(server, h2load, args.duration))
                except Unavailable as error:
                    failed[name] = str(error)
                except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                    print(f"  {name} failed: {error}", file=sys.stderr)
                    runs[name].append({"error": str(error)})
                time.sleep(0.5)
    median = {}
    for name, results in runs.items():
        good = [run for run in results if "error" not in run]
        if good:
            median[name] = medians(good)
    ratio = {}
    for ours, other, _ in RATIOS:
        if ours in median and other in median:
            figure = median[ours]["requests_per_second"] / median[other]["requests_per_second"]
            ratio[f"{ours}/{other}"] = figure
    installed = {"ours": versions(Path(sys.executable), OURS_DISTRIBUTIONS)}
    if (PEER_VENV / "bin" / "python").exists():
        installed["peers"] = versions(PEER_VENV / "bin" / "python", PEER_DISTRIBUTIONS)
    h2load_version = subprocess.run([h2load, "--version"], capture_output=True, text=True)
    installed["h2load"] = h2load_version.stdout.strip()
    return {
        "repeat": args.repeat,
        "duration": args.duration,
        "warm_up": WARM_UP,
        "load": {"http2": " ".join(HTTP2_LOAD), "http1": " ".join(HTTP1_LOAD)},
        "time": {"start": started_at, "end": utc_now()},
        "load_average": {"start": started_load, "end": load_average()},
        "versions": installed,
        "unavailable": failed,
        "runs": runs,
        "median": median,
        "ratio": ratio,
    }


def print_table(result: dict) -> None:
    """Each contender's median requests per second and run-by-run figures, then the ratios
    with their goals."""
    median = result["median"]
    print(
        f"{result['time']['start']} to {result['time']['end']}: GET /hello/, medians of "
        f"{result['repeat']} runs each, h2load for "
        f"{result['duration']} s after {result['warm_up']} s of warm-up; load average "
        f"{result['load_average']['start']:.2f} at the start, "
        f"{result['load_average']['end']:.2f} at the end"
    )
    print(
        f"{'contender':<18}{'protocol, load':<22}{'requests/s':>11}{'mean ms':>9}"
        f"{'server CPU':>12}{'h2load CPU':>12}  runs"
    )
    for name, runs in result["runs"].items():
        figures = median.get(name)
        each = ", ".join(
            "failed" if "error" in run else f"{run['requests_per_second']:,.0f}" for run in runs
        )
        cells = f"{name:<18}{CONTENDERS[name].description:<22}"
        if figures is None:
            print(f"{cells}{'-':>11}{'':>33}  {each}")
            continue
        print(
            f"{cells}{figures['requests_per_second']:>11,.0f}{figures['latency_mean_ms']:>9.1f}"
            f"{figures['server_cpu']:>12.0%}{figures['load_cpu']:>12.0%}  {each}"
        )
    print(f"\n{'ratio':<32}{'value':>8}{'goal':>8}")
    for ours, other, goal in RATIOS:
        value = result["ratio"].get(f"{ours}/{other}")
        if value is not None:
            print(f"{ours + ' / ' + other:<32}{value:>7.2f}x{f'{goal:g}x' if goal else '':>8}")
    for name, reason in result["unavailable"].items():
        print(f"  {name} could not run: {reason}")
    for name, runs in result["runs"].items():
        for run in runs:
            if "error" in run:
                print(f"  {name} failed: {run['error']}")


def main() -> None:
    """Parse the command line, run the comparison and print it."""
    parser = argument_parser(__doc__, repeat=3)
    parser.add_argument("--contender", action="append", choices=list(CONTENDERS))
    parser.add_argument("--duration", type=int, default=10, help="h2load seconds (10)")
    args = parser.parse_args()
    args.contender = args.contender or list(CONTENDERS)
    # Every run is kept (git-ignored) so a table can be re-read or checked later.
    report(compare(args), args.json, print_table, keep=HERE / "results" / "http2.json")


if __name__ == "__main__":
    main()
