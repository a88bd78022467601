"""What the benchmark scripts share: figures, the peers' virtualenvs, measured children,
server processes, CPU pinning and the report.

Standard library only: the scripts that import it also run as children under the peers'
virtualenvs, which hold none of this project's packages. Each script runs by path
(``python benchmarks/x.py``), so Python puts ``benchmarks/`` first on ``sys.path`` and
``import _common`` finds this file under any interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

INSTALL_TIMEOUT = 600


def argument_parser(doc: str, repeat: int, flag: str = "--repeat") -> argparse.ArgumentParser:
    """A parser described by *doc*'s first paragraph, with ``--json`` and *flag* (the runs of
    each contender, *repeat* by default)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(flag, type=int, default=repeat, help=f"runs of each (default {repeat})")
    return parser


def percentile(values: list[float], fraction: float) -> float:
    """The *fraction* quantile of *values* (nearest rank), or NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def medians(runs: list[dict]) -> dict[str, float]:
    """The median of every numeric figure of *runs* (booleans and None are not figures)."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    return {key: statistics.median(run[key] for run in runs) for key in keys}


def peer_venv(venv: Path, requirements: Sequence[str], needs: Sequence[str] = ("python",)) -> Path:
    """The bin folder of the peers' virtualenv *venv*, made with ``python -m venv`` and
    ``pip install`` *requirements* when one of the executables *needs* is missing there."""
    bin_dir = venv / "bin"
    if not all((bin_dir / name).exists() for name in needs):
        print(f"Creating {venv} with {' '.join(requirements)} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, timeout=INSTALL_TIMEOUT
        )
        subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", "-q", *requirements],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
    return bin_dir


def channels_serve(app: Path, settings: str, *options: str) -> list[str]:
    """``channels serve`` *options* from this interpreter's virtualenv, quiet, with the
    benchmark app folder *app* on the path and its *settings* module."""
    channels = Path(sys.executable).parent / "channels"
    return [
        *(str(channels), "--pythonpath", str(app), "--settings", settings),
        *("-v", "0", "serve", *options),
    ]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``PYTHONPATH``, plus *extra*: a child imports
    exactly its own interpreter's packages (ours, or a peer virtualenv's)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(extra)
    return env


def run_json(
    command: Sequence[str], what: str, timeout: float, env: Mapping[str, str] | None = None
) -> dict:
    """Run a measuring child to its end and return the JSON object it printed; RuntimeError
    naming *what* ran, with the child's stderr, when it fails."""
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout, env=env
    )
    if done.returncode:
        raise RuntimeError(f"{what} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def require_two_cpus() -> None:
    """Exit with the fix unless ``taskset`` is there and the machine has two CPUs: the
    server is pinned to one and the load generator to the other."""
    if shutil.which("taskset") is None:
        raise SystemExit(
            "taskset is not installed: install util-linux (apt-get install -y util-linux)."
        )
    if (os.cpu_count() or 1) < 2:
        raise SystemExit(
            "This benchmark pins the server and the load to two CPUs; this machine has one."
        )


class ServerProcess:
    """A server under measurement, in its own session: :meth:`ready` is awaited on entry,
    and the server is stopped on exit (or when it never gets ready)."""

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], log: Path | None = None
    ) -> None:
        self.log = open(log, "a") if log is not None else None  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(part) for part in command],
            env=dict(env),
            stdout=self.log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self.log else subprocess.DEVNULL,
            start_new_session=True,
        )

    def ready(self) -> None:
        """Return once the server serves; raise when it does not in time."""

    def __enter__(self) -> Self:
        try:
            self.ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The server's process id (``taskset`` execs the server in place)."""
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.log is not None:
            self.log.close()


def report(
    result: dict, as_json: bool, print_table: Callable[[dict], None], keep: Path | None = None
) -> None:
    """Keep *result* as JSON in *keep* (under the git-ignored ``results/``) when given, then
    print it as JSON or as *print_table*'s table."""
    if keep is not None:
        keep.parent.mkdir(exist_ok=True)
        keep.write_text(json.dumps(result, indent=2))
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


LAYER_ROWS = (
    ("send/receive pairs per s", "pairs_per_second"),
    ("fan-out deliveries per s", "fan_out_deliveries_per_second"),
)


def layer_table(first: tuple[str, str], second: tuple[str, str]) -> Callable[[dict], None]:
    """A ``print_table`` for a two-layer comparison: pairs and fan-out medians and the ratio.

    *first* and *second* are (key in the result's medians, column title).
    """

    def print_table(result: dict) -> None:
        (first_key, first_title), (second_key, second_title) = first, second
        width = max(len(first_title), len(second_title)) + 2
        print(f"medians of {result['repeat']} runs each")
        print(f"{'measurement':<28}{first_title:>{width}}{second_title:>{width}}{'ratio':>9}")
        for label, key in LAYER_ROWS:
            median = result["median"][key]
            print(
                f"{label:<28}{median[first_key]:>{width},.0f}{median[second_key]:>{width},.0f}"
                f"{result['ratio'][key]:>8.2f}x"
            )

    return print_table
