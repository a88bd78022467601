"""Reliability under hostile clients, ours beside Daphne: what one slow reader costs.

Section **slow reader**: a WebSocket consumer sends N MiB (default 100) in 64 KiB binary
messages to a client that never reads (its receive buffer set as small as the kernel allows).
The server's resident memory (``VmRSS`` from ``/proc/<pid>/status``) is sampled every 0.1 s
while the client does not read; then the client reads what comes (up to 20 s), to show how
much was delivered and whether the server closed the connection, and with which code.

- **ours**: ``channels serve`` (channels-http + channels-ws), the ``Flood`` consumer of
  ``benchmarks/apps/ours/``;
- **daphne**: Daphne serving Django Channels 4.3's ``Flood`` consumer of
  ``benchmarks/apps/peer/``, from the virtualenv ``http_ws.py`` installs
  (``benchmarks/.venv-asgi-peers/``, created on first use).

Each run starts a fresh server (as ``http_ws.py`` starts them: pinned to CPU 0, ready once
``/hello/`` answers). A run takes about 15 s (``--seconds`` of not reading, then the reading);
both contenders once each finish in well under 2 minutes, once the peers' virtualenv exists.

Usage::

    python benchmarks/reliability.py                    # both, one run each, a table
    python benchmarks/reliability.py --json             # the same as JSON
    python benchmarks/reliability.py --contender ours --mib 200 --seconds 5
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from _common import argument_parser, medians, report
from http_ws import Server, peer_bin

from channels_ws.frames import BinaryMessage, Close, FrameCodec, ProtocolError

HERE = Path(__file__).resolve().parent
CONTENDERS = ("ours", "daphne")
MESSAGE = 64 * 1024
SAMPLE_EVERY = 0.1
READ_FOR = 20.0
IDLE_AFTER = 5.0


def rss_mib(pid: int) -> float:
    """The resident memory of process *pid* in MiB (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line: is the process gone?")


def open_slow_reader(port: int, mib: int) -> tuple[socket.socket, bytes]:
    """A WebSocket to ``/flood/?mib=N`` with the smallest receive buffer, past its handshake;
    returns the socket and the bytes that came after the 101 response."""
    sock = socket.socket()
    # Set before connecting, so that the window the client advertises stays small.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /flood/?mib={mib} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("The server closed the connection during the handshake.")
        head += chunk
    response, _, rest = head.partition(b"\r\n\r\n")
    if not response.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"The server refused the WebSocket: {response[:200]!r}")
    return sock, rest


def read_what_comes(sock: socket.socket, first: bytes, expected: int) -> dict:
    """Read until the server closes, *expected* bytes of messages came, or nothing comes for
    a while; what was delivered and the close code, if any."""
    codec = FrameCodec(1 << 26, 1 << 26, None, client=True)
    delivered, close_code = 0, None
    sock.settimeout(IDLE_AFTER)
    deadline = time.monotonic() + READ_FOR
    data = first
    while True:
        try:
            events = codec.receive(data)
        except ProtocolError as error:
            raise RuntimeError(f"The server sent a broken frame: {error}") from error
        for event in events:
            if isinstance(event, BinaryMessage):
                delivered += len(event.data)
            elif isinstance(event, Close):
                close_code = event.code
        if close_code is not None or delivered >= expected or time.monotonic() > deadline:
            break
        try:
            data = sock.recv(1 << 20)
        except (TimeoutError, ConnectionError):
            break
        if not data:
            break
    return {"delivered_mib": delivered / 2**20, "close_code": close_code}


def slow_reader(contender: str, mib: int, seconds: float) -> dict:
    """One run: a fresh server, one client that does not read for *seconds*, then reads."""
    with Server(contender) as server:
        baseline = rss_mib(server.pid)
        sock, first = open_slow_reader(server.port, mib)
        try:
            peak = baseline
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                peak = max(peak, rss_mib(server.pid))
                time.sleep(SAMPLE_EVERY)
            held = rss_mib(server.pid)
            read = read_what_comes(sock, first, mib * 2**20)
        finally:
            sock.close()
    return {
        "baseline_rss_mib": baseline,
        "peak_growth_mib": peak - baseline,
        "growth_while_not_reading_mib": held - baseline,
        **read,
    }


def daphne_version() -> str:
    """The version of Daphne in the peers' virtualenv."""
    done = subprocess.run(
        [str(peer_bin() / "python"), "-c", "import daphne; print(daphne.__version__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def print_table(result: dict) -> None:
    """Ours and Daphne side by side."""
    contenders = [c for c in CONTENDERS if c in result["median"]]
    print(
        f"slow reader: {result['mib']} MiB in 64 KiB WebSocket messages to a client that does "
        f"not read for {result['seconds']:g} s (medians of {result['repeat']} runs; "
        f"Daphne {result.get('daphne_version', '-')})"
    )
    print(f"{'':<38}" + "".join(f"{c:>12}" for c in contenders))
    rows = (
        ("server RSS before, MiB", "baseline_rss_mib"),
        ("RSS growth, peak, MiB", "peak_growth_mib"),
        ("RSS growth at the end, MiB", "growth_while_not_reading_mib"),
        ("delivered once the client read, MiB", "delivered_mib"),
    )
    for label, key in rows:
        print(f"{label:<38}" + "".join(f"{result['median'][c][key]:>12.1f}" for c in contenders))
    codes = []
    for contender in contenders:
        seen = {run["close_code"] for run in result["runs"][contender]}
        codes.append(",".join(str(code) if code else "none" for code in sorted(seen, key=str)))
    print(f"{'close code the client got':<38}" + "".join(f"{code:>12}" for code in codes))


def main() -> None:
    """Parse the command line, run the slow reader for each contender, report."""
    parser = argument_parser(__doc__, repeat=1)
    parser.add_argument("--contender", action="append", choices=CONTENDERS)
    parser.add_argument("--mib", type=int, default=100, help="MiB the consumer sends (100)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="seconds the client does not read (10)"
    )
    args = parser.parse_args()
    contenders = args.contender or list(CONTENDERS)
    (HERE / "results").mkdir(exist_ok=True)
    runs: dict[str, list[dict]] = {contender: [] for contender in contenders}
    for repetition in range(args.repeat):
        for contender in contenders:
            print(f"run {repetition + 1}: {contender} slow reader", file=sys.stderr)
            runs[contender].append(slow_reader(contender, args.mib, args.seconds))
    result = {
        "section": "slow reader",
        "mib": args.mib,
        "seconds": args.seconds,
        "repeat": args.repeat,
        "runs": runs,
        # The close code is a fact of each run, not a figure to take the median of.
        "median": {
            contender: {k: v for k, v in medians(found).items() if k != "close_code"}
            for contender, found in runs.items()
        },
    }
    if "daphne" in contenders:
        result["daphne_version"] = daphne_version()
    report(result, args.json, print_table, keep=HERE / "results" / "reliability.json")


if __name__ == "__main__":
    main()
