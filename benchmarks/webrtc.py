"""WebRTC data-channel echo: channels-webrtc under ``channels serve`` beside bare aiortc.

::

    python benchmarks/webrtc.py                   # both, 3 runs each, medians and the ratio
    python benchmarks/webrtc.py --json            # the same, as JSON with every run
    python benchmarks/webrtc.py --messages 2000   # a shorter run

Each run starts the contender's server on a free port on 127.0.0.1, connects one aiortc client
peer (in this process: ``iceServers=[]``, host candidates on 127.0.0.1 only, both SDPs checked
for any other address), opens one data channel, and measures echoed messages per second:
``--messages`` messages of 64 bytes, ``--window`` of them in flight at a time, timed from the
first send to the last echo, after a warm-up of 200. The contenders alternate so that machine
noise hits both alike. Every run is bounded by ``--timeout`` seconds.

- ``ours``: ``channels serve`` with ``benchmarks/apps/webrtc`` (HTTP signalling through
  ``offer_consumer``, an async echo consumer on ``webrtc.receive``), in-process mode.
- ``bare``: ``benchmarks/apps/bare_webrtc.py``: the same aiortc answering the same offers and
  echoing from its ``message`` event, no Channels.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from _common import ServerProcess, argument_parser, channels_serve, report

from channels_core.testing.processes import free_port, wait_for_port
from channels_webrtc.testing import (
    accept_answer,
    foreign_addresses,
    loopback_peer,
    make_offer,
    opened,
    post_offer,
)

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
CONTENDERS = ("ours", "bare")
PAYLOAD = b"x" * 64
WARM_UP = 200
GOAL = 1.5


def server_command(contender: str, port: int) -> list[str]:
    """The command line that starts *contender* on *port*."""
    if contender == "ours":
        endpoint = f"tcp:{port}:interface=127.0.0.1"
        return channels_serve(APPS / "webrtc", "bench_webrtc.settings", "--endpoint", endpoint)
    return [sys.executable, str(APPS / "bare_webrtc.py"), str(port)]


class Server(ServerProcess):
    """One contender's server process on 127.0.0.1, stopped with SIGTERM on exit."""

    def __init__(self, contender: str) -> None:
        self.contender = contender
        self.port = free_port()
        super().__init__(server_command(contender, self.port), env=os.environ)

    def ready(self) -> None:
        """Wait until the server accepts connections."""
        wait_for_port(self.port, timeout=30)


async def echo_rate(port: int, messages: int, window: int) -> float:
    """Echoed messages per second over one data channel to the server on *port*."""
    peer = loopback_peer()
    channel = peer.createDataChannel("bench")
    received = 0
    done = asyncio.Event()
    credit = asyncio.Semaphore(window)
    target = 0

    def on_message(_data: bytes) -> None:
        nonlocal received
        received += 1
        credit.release()
        if received == target:
            done.set()

    channel.on("message", on_message)
    try:
        offer = await make_offer(peer)
        answer = await post_offer(f"http://127.0.0.1:{port}/webrtc/offer", offer)
        for sdp in (offer["sdp"], answer["sdp"]):
            if foreign_addresses(sdp):
                raise SystemExit(f"An SDP names {foreign_addresses(sdp)}: stopping.")
        await accept_answer(peer, answer)
        await opened(channel)
        started = 0.0
        for count, phase in ((WARM_UP, "warm-up"), (messages, "measure")):
            received, target = 0, count
            done.clear()
            if phase == "measure":
                started = time.perf_counter()
            for _ in range(count):
                await credit.acquire()
                channel.send(PAYLOAD)
            await done.wait()
        return messages / (time.perf_counter() - started)
    finally:
        await peer.close()


def measure(contender: str, args: argparse.Namespace) -> float:
    """One run of *contender*: start its server, measure, stop it."""
    with Server(contender) as server:
        return asyncio.run(
            asyncio.wait_for(echo_rate(server.port, args.messages, args.window), args.timeout)
        )


def compare(args: argparse.Namespace) -> dict:
    """*repeat* runs of each contender, alternating; the medians and bare over ours."""
    runs: dict[str, list[float]] = {contender: [] for contender in CONTENDERS}
    for _ in range(args.repeat):
        for contender in CONTENDERS:
            runs[contender].append(measure(contender, args))
    medians = {contender: statistics.median(rates) for contender, rates in runs.items()}
    ratio = medians["bare"] / medians["ours"]
    return {"messages": args.messages, "window": args.window, "repeat": args.repeat,
            "runs": runs, "median": medians, "bare_over_ours": ratio, "goal": GOAL}  # fmt: skip


def print_table(result: dict) -> None:
    """Each contender's median and runs, then the ratio against the goal."""
    print(f"data-channel echoes per second, {result['messages']} x 64 B, window "
          f"{result['window']}, medians of {result['repeat']} runs")  # fmt: skip
    for contender in CONTENDERS:
        rates = ", ".join(f"{rate:,.0f}" for rate in result["runs"][contender])
        print(f"  {contender:5} {result['median'][contender]:>9,.0f}   ({rates})")
    ratio = result["bare_over_ours"]
    verdict = "within" if ratio <= GOAL else "outside"
    print(f"  bare aiortc is {ratio:.2f}x ours ({verdict} the {GOAL}x goal)")


def main() -> None:
    """Run the comparison and print a table (or JSON)."""
    parser = argument_parser(__doc__, repeat=3)
    parser.add_argument("--messages", type=int, default=5000, help="messages per run (5000)")
    parser.add_argument("--window", type=int, default=50, help="messages in flight (50)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per run (60)")
    args = parser.parse_args()
    report(compare(args), args.json, print_table)


if __name__ == "__main__":
    main()
