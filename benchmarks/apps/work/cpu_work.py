"""The CPU work of ``benchmarks/processes.py``: about 0.5 ms of hashing per request and per
WebSocket message, the same code for every contender.

``BENCH_WORK_ITERATIONS`` (set by the benchmark, which calibrates once at its start so that
every server does exactly the same work) gives the number of 1 KiB SHA-256 updates per call;
without it, the module calibrates itself when imported.
"""

from __future__ import annotations

import hashlib
import os
import time

BLOCK = bytes(range(256)) * 4
TARGET_SECONDS = 0.0005
PROBE_ITERATIONS = 200


def burn(iterations: int) -> str:
    """Hash *iterations* 1 KiB blocks with SHA-256 and return the hex digest."""
    digest = hashlib.sha256()
    for _ in range(iterations):
        digest.update(BLOCK)
    return digest.hexdigest()


def calibrate(target: float = TARGET_SECONDS, trials: int = 30) -> int:
    """The iterations of :func:`burn` that take *target* seconds on this machine: the fastest
    of *trials* timed probes, so that other work on the machine does not inflate it."""
    fastest = float("inf")
    for _ in range(trials):
        started = time.perf_counter()
        burn(PROBE_ITERATIONS)
        fastest = min(fastest, time.perf_counter() - started)
    return max(1, round(PROBE_ITERATIONS * target / fastest))


ITERATIONS = int(os.environ.get("BENCH_WORK_ITERATIONS") or 0) or calibrate()


def work() -> str:
    """One request's or message's worth of CPU work; the digest, so it is used."""
    return burn(ITERATIONS)
