"""A WebSocket load generator on uvloop: asyncio Protocols, pre-built frames, minimal parsing.

Three measurements, each printing one JSON object on stdout:

- ``echo``: *connections* connections each keep *in_flight* text messages in flight (a new
  one goes out for every echo that comes back); messages echoed per second, over *duration*
  seconds after a *warmup*.
- ``echo --connections 1 --in-flight 1``: the ping-pong round trips per second.
- ``echo --messages N``: exactly *N* messages echoed, as fast as the server answers, and
  the time they took (``benchmarks/cost.py`` counts the server's instructions per message).
- ``idle``: open *connections* connections (*concurrency* opening handshakes at a time) and
  hold them; connections opened per second, and the server's VmRSS growth per connection
  (``--server-pid``), read from ``/proc`` after a warm-up connection and after all are open.

Client frames are built once (masked with a fixed key: the mask is there for proxies, not
secrecy) and written as they are. Server frames are only counted: the parser reads each
frame's two-to-ten header bytes to find where the next begins, and never copies payloads.
With ``--server-pid`` the echo result also gives the CPU time the server and the generator
used during the measured window, so a run shows which side saturated.

Usage::

    python benchmarks/loadgen/ws_load.py echo --port 8000 --connections 50 --in-flight 16
    python benchmarks/loadgen/ws_load.py echo --port 8000 --messages 5000
    python benchmarks/loadgen/ws_load.py idle --port 8000 --connections 5000 --server-pid 123
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import uvloop

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MASK = b"\x37\xfa\x21\x3d"
HANDSHAKE_END = b"\r\n\r\n"
TIMEOUT = 30.0


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame (payload under 126 bytes)."""
    masked = bytes(byte ^ MASK[index % 4] for index, byte in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + MASK + masked


ECHOED = b"hello, websocket"
MESSAGE = client_frame(0x1, ECHOED)
PONG = client_frame(0xA, b"")
CLOSE = client_frame(0x8, (1000).to_bytes(2, "big"))


def handshake(port: int, path: str) -> bytes:
    """The opening request (no Origin, no extensions: every server treats it alike)."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process *pid*, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """VmRSS of process *pid* in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS line: is {pid} a live process?")


class Stats:
    """What every connection of one run adds to; with *messages*, a run of that many
    messages, whose ``finished`` future resolves once they all came back."""

    def __init__(self, messages: int | None = None) -> None:
        self.received = 0
        self.sample: bytes | None = None
        self.messages = messages
        self.unsent = messages
        self.finished: asyncio.Future | None = None
        if messages is not None:
            self.finished = asyncio.get_running_loop().create_future()

    def take(self, wanted: int) -> int:
        """How many of *wanted* messages to send now: all of them, or in a run of a fixed
        number, what is left of it."""
        if self.unsent is None:
            return wanted
        taken = min(wanted, self.unsent)
        self.unsent -= taken
        return taken

    def add(self, echoes: int) -> None:
        """Count *echoes* more messages echoed back."""
        self.received += echoes
        if self.finished is not None and self.received >= self.messages:
            self.finished.set_result(None)


class ClientProtocol(asyncio.Protocol):
    """One client connection: the opening handshake, then :meth:`frames` for what follows.

    ``opened`` resolves on the server's ``101`` (and fails when it refuses or closes first);
    :meth:`split` cuts the server's bytes into frames from their headers alone.
    """

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.open = False

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        if self.open:
            self.frames(data)
            return
        self.buffer += data
        end = self.buffer.find(HANDSHAKE_END)
        if end < 0:
            return
        head, rest = self.buffer[:end], self.buffer[end + 4 :]
        if self.opened.done():  # given up on (the run is ending)
            self.transport.close()
            return
        if not head.startswith(b"HTTP/1.1 101"):
            self.opened.set_exception(ConnectionError(f"handshake refused: {head[:200]!r}"))
            self.transport.close()
            return
        self.open = True
        self.buffer = b""
        self.opened.set_result(None)
        self.on_open()
        if rest:
            self.frames(rest)

    def on_open(self) -> None:
        """Called once the server accepted the handshake."""

    def frames(self, data: bytes) -> None:
        """Handle *data*, bytes the server sent after the handshake."""
        raise NotImplementedError

    def split(self, data: bytes) -> Iterator[tuple[int, bytes, int, int]]:
        """``(opcode, buffer, start, end)`` of each complete frame in the bytes kept so far
        and *data*: its payload is ``buffer[start:end]``. The incomplete rest is kept."""
        buffer = self.buffer + data if self.buffer else data
        end = len(buffer)
        position = 0
        while end - position >= 2:
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if end - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if end - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                header = 10
            if end - position < header + length:
                break
            opcode = buffer[position] & 0x0F
            start = position + header
            position = start + length
            yield opcode, buffer, start, position
        self.buffer = buffer[position:]


class LoadProtocol(ClientProtocol):
    """One client connection counting server frames.

    With *in_flight* > 0 it sends that many messages once open and one more for each data
    frame received; with 0 it stays idle (answering pings).
    """

    def __init__(self, request: bytes, in_flight: int, stats: Stats) -> None:
        super().__init__(request)
        self.in_flight = in_flight
        self.stats = stats

    def on_open(self) -> None:
        count = self.stats.take(self.in_flight)
        if count:
            self.transport.write(MESSAGE * count)

    def frames(self, data: bytes) -> None:
        """Count complete frames; answer each data frame and ping."""
        echoes = 0
        pings = 0
        for opcode, buffer, start, end in self.split(data):
            if opcode == 0x9:
                pings += 1
            elif opcode != 0xA:
                echoes += 1
                if self.stats.sample is None:
                    # One payload per run is kept, to check that the server echoes.
                    self.stats.sample = bytes(buffer[start:end])
        if echoes:
            self.stats.add(echoes)
            more = self.stats.take(echoes)
            if more:
                self.transport.write(MESSAGE * more)
        if pings:
            self.transport.write(PONG * pings)


Client = TypeVar("Client", bound=ClientProtocol)


async def open_client(port: int, path: str, protocol_factory: Callable[[bytes], Client]) -> Client:
    """Open one WebSocket connection to 127.0.0.1:*port* and wait for its handshake;
    *protocol_factory* makes its protocol from the opening request."""
    loop = asyncio.get_running_loop()
    request = handshake(port, path)
    _, protocol = await loop.create_connection(lambda: protocol_factory(request), "127.0.0.1", port)
    await asyncio.wait_for(protocol.opened, TIMEOUT)
    return protocol


async def open_many(
    count: int, concurrency: int, open_one: Callable[[], Awaitable[Client]]
) -> list[Client]:
    """*count* connections from ``open_one()``, *concurrency* opening handshakes at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def limited() -> Client:
        async with slots:
            return await open_one()

    return await asyncio.gather(*(limited() for _ in range(count)))


async def connect(port: int, path: str, in_flight: int, stats: Stats) -> LoadProtocol:
    """Open one load connection and wait for its handshake."""
    return await open_client(port, path, lambda request: LoadProtocol(request, in_flight, stats))


async def run_echo(args: argparse.Namespace) -> dict:
    """Messages echoed per second with *connections* x *in_flight* messages in flight."""
    stats = Stats()
    connections = await asyncio.gather(
        *(connect(args.port, args.path, args.in_flight, stats) for _ in range(args.connections))
    )
    await asyncio.sleep(args.warmup)
    received, started = stats.received, time.perf_counter()
    own_cpu = time.process_time()
    server_cpu = cpu_seconds(args.server_pid) if args.server_pid else 0.0
    await asyncio.sleep(args.duration)
    count, elapsed = stats.received - received, time.perf_counter() - started
    own_cpu = time.process_time() - own_cpu
    server_cpu = cpu_seconds(args.server_pid) - server_cpu if args.server_pid else None
    for protocol in connections:
        protocol.transport.close()
    return {
        "messages_per_second": count / elapsed,
        "generator_cpu": own_cpu / elapsed,
        "server_cpu": server_cpu / elapsed if server_cpu is not None else None,
        "echoed": stats.sample == ECHOED,
    }


async def run_count(args: argparse.Namespace) -> dict:
    """Exactly *messages* messages echoed through *connections* x *in_flight*, from the
    first connection's opening to the last echo: how long they took."""
    stats = Stats(args.messages)
    started = time.perf_counter()
    connections = await asyncio.gather(
        *(connect(args.port, args.path, args.in_flight, stats) for _ in range(args.connections))
    )
    await stats.finished
    elapsed = time.perf_counter() - started
    for protocol in connections:
        protocol.transport.close()
    return {
        "messages": stats.received,
        "seconds": elapsed,
        "echoed": stats.sample == ECHOED,
    }


async def run_idle(args: argparse.Namespace) -> dict:
    """Open *connections* idle connections; the rate and the server's RSS growth each."""
    stats = Stats()
    warm = await connect(args.port, args.path, 1, stats)
    for _ in range(int(TIMEOUT * 100)):
        if stats.received:
            break
        await asyncio.sleep(0.01)
    warm.transport.write(CLOSE)
    warm.transport.close()
    await asyncio.sleep(args.settle)
    before = rss_kib(args.server_pid)
    started = time.perf_counter()
    connections = await open_many(
        args.connections, args.concurrency, lambda: connect(args.port, args.path, 0, stats)
    )
    elapsed = time.perf_counter() - started
    await asyncio.sleep(args.settle)
    after = rss_kib(args.server_pid)
    for protocol in connections:
        protocol.transport.close()
    return {
        "connections_per_second": args.connections / elapsed,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": (after - before) / args.connections,
    }


def raise_open_files(needed: int) -> None:
    """Raise the soft limit on open files to the hard limit; fail clearly when too low."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(
            f"The hard limit on open files is {hard}, below the {needed} this run needs; "
            f"raise it (ulimit -Hn {needed} as root) and run again."
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    """Parse the command line, run one measurement and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["echo", "idle"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/echo/")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument(
        "--messages", type=int, help="echo exactly this many messages (instead of --duration)"
    )
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before reading RSS")
    parser.add_argument("--server-pid", type=int, help="the server, for its CPU time and RSS")
    args = parser.parse_args()
    if args.mode == "idle" and not args.server_pid:
        parser.error("idle needs --server-pid, the server process whose RSS to read.")
    if args.messages is not None and (args.mode != "echo" or args.messages < 1):
        parser.error("--messages is a number of messages to echo: echo mode, at least 1.")
    raise_open_files(args.connections + 100)
    run = run_idle if args.mode == "idle" else run_count if args.messages else run_echo
    result = uvloop.run(asyncio.wait_for(run(args), args.duration + args.warmup + 4 * TIMEOUT))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
