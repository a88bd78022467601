"""Network faults between this machine's processes and a server in a network namespace.

::

    from channels_core.testing.netns import NetworkNamespace, redis_in

    with NetworkNamespace(delay=0.05) as namespace, redis_in(namespace) as server:
        layer = RedisChannelLayer(hosts=[server.url])    # over the link: 100 ms a round trip
        namespace.blackhole()                            # every packet dropped, both ways
        namespace.heal()                                 # the link works again

A :class:`NetworkNamespace` is a network namespace of its own (``ip netns add``) joined to
this one by a point-to-point link: a TUN device on each side (the namespace's is moved into
it) and a small forwarding process that copies each packet from one to the other, *delay*
seconds late in each direction when asked (so a round trip takes twice *delay* longer). The
link is made this way rather than with a veth pair and ``tc qdisc ... netem`` because netem
is a kernel module that many kernels (this project's test machine's among them) lack; the
TCP connections over it are the kernel's own, with its retransmissions and timeouts.

Both ends have private addresses (:attr:`host_address` here, :attr:`address` inside) from
198.18.0.0/15, the range RFC 2544 keeps for benchmarking networks, chosen apart from every
address and route this namespace already has: traffic to :attr:`address` takes the link
and nothing else, never a real interface. :meth:`blackhole` drops every packet on the link
with nftables rules inside the namespace (the server's kernel never answers, as with a
pulled cable or a firewall that drops), :meth:`heal` removes them. Programs run inside the
namespace through :attr:`launcher` (``ip netns exec NAME``).

Names come from this process's id and a counter, so parallel runs do not collide. Leaving
the ``with`` block (or :meth:`close`) stops the forwarder, which removes both TUN devices,
kills what still runs in the namespace (only processes the test started there can be in it)
and deletes the namespace, even when the test failed. Without root (CAP_NET_ADMIN),
``/dev/net/tun``, ``ip`` or ``nft``, the test that asked for a namespace is skipped, saying
why.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque

import pytest

from .processes import require_program
from .redis import RedisServer

# Where the link's addresses come from: RFC 2544's benchmarking range, split in /30s.
ADDRESS_RANGE = ipaddress.ip_network("198.18.0.0/15")
FAULT_TABLE = "channels_faults"
COMMAND_TIMEOUT = 10.0

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_created = itertools.count()


def _open_tun(name: str) -> int:
    """A file descriptor of a new TUN device *name* (IP packets, no extra header)."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def _used_networks() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of this namespace's addresses and routes."""
    output = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True, check=True
    ).stdout
    networks = []
    for word in output.split() + [line.split()[0] for line in routes.splitlines() if line]:
        with contextlib.suppress(ValueError):
            networks.append(ipaddress.ip_network(word, strict=False))
    return [network for network in networks if network.version == 4 and network.prefixlen]


def _free_subnet(start: int) -> ipaddress.IPv4Network:
    """A /30 of :data:`ADDRESS_RANGE` that overlaps nothing here, from the *start*-th on."""
    subnets = list(ADDRESS_RANGE.subnets(new_prefix=30))
    used = _used_networks()
    for offset in range(len(subnets)):
        subnet = subnets[(start + offset) % len(subnets)]
        if not any(subnet.overlaps(network) for network in used):
            return subnet
    raise RuntimeError(f"Every /30 of {ADDRESS_RANGE} is in use on this machine.")


class NetworkNamespace:
    """A network namespace joined to this one by a link with switchable faults.

    :param delay: seconds added to every packet in each direction (0.05 makes every round
        trip 100 ms longer).
    """

    def __init__(self, delay: float = 0.0) -> None:
        self._ip = require_program("ip", "iproute2")
        self._nft = require_program("nft", "nftables")
        if delay < 0:
            raise ValueError(f"A link delay is a number of seconds, 0 or more, not {delay!r}.")
        self.delay = delay
        number = next(_created)
        pid = os.getpid()
        self.name = f"channels-{pid}-{number}"
        self.host_interface = f"ch{pid}x{number}h"
        self.interface = f"ch{pid}x{number}n"
        subnet = _free_subnet(pid * 16 + number)
        host, inside = list(subnet.hosts())
        #: This namespace's end of the link, and the namespace's (where its servers listen).
        self.host_address, self.address = str(host), str(inside)
        self.forwarder: subprocess.Popen | None = None
        self._created = False
        self._blackholed = False

    @property
    def launcher(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return [self._ip, "netns", "exec", self.name]

    def _run(self, *command: str, input: str | None = None, inside: bool = False) -> None:
        """Run *command* (inside the namespace if *inside*); RuntimeError with its output
        when it fails."""
        full = [*self.launcher, *command] if inside else list(command)
        result = subprocess.run(
            full, input=input, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
        if result.returncode:
            raise RuntimeError(
                f"{' '.join(full)!r} failed with status {result.returncode}: "
                f"{(result.stderr or result.stdout).strip()}"
            )

    def open(self) -> NetworkNamespace:
        """Make the namespace and the link; skip the test if this machine cannot."""
        result = subprocess.run(
            [self._ip, "netns", "add", self.name], capture_output=True, text=True
        )
        if result.returncode:
            pytest.skip(
                f"Cannot create a network namespace ({result.stderr.strip()}): the "
                "network-fault tests need root (CAP_NET_ADMIN) and iproute2."
            )
        self._created = True
        try:
            self._connect()
        except BaseException:
            self.close()
            raise
        return self

    def _connect(self) -> None:
        fds = []
        try:
            for name in (self.host_interface, self.interface):
                try:
                    fds.append(_open_tun(name))
                except OSError as error:
                    pytest.skip(
                        f"Cannot create a TUN device ({error}): the network-fault tests need "
                        "root (CAP_NET_ADMIN) and /dev/net/tun."
                    )
            self.forwarder = subprocess.Popen(
                [sys.executable, "-m", __name__, *map(str, fds), repr(self.delay)],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
            )
        finally:
            for fd in fds:
                os.close(fd)  # the forwarder holds them: its exit removes both devices
        ip = self._ip
        self._run(ip, "link", "set", self.interface, "netns", self.name)
        for inside, interface, address, peer in (
            (False, self.host_interface, self.host_address, self.address),
            (True, self.interface, self.address, self.host_address),
        ):
            # No IPv6 link-local address: nothing but what the tests send crosses the link.
            self._run(ip, "link", "set", interface, "addrgenmode", "none", inside=inside)
            self._run(ip, "addr", "add", address, "peer", peer, "dev", interface, inside=inside)
            self._run(ip, "link", "set", interface, "up", inside=inside)
        self._run(ip, "link", "set", "lo", "up", inside=True)

    def blackhole(self) -> None:
        """Drop every packet on the link, both ways, without a word (no reset, no ICMP)."""
        ruleset = (
            f"table inet {FAULT_TABLE} {{\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f'    iifname "{self.interface}" drop\n'
            "  }\n"
            "  chain output {\n"
            "    type filter hook output priority 0; policy accept;\n"
            f'    oifname "{self.interface}" drop\n'
            "  }\n"
            "}\n"
        )
        self._run(self._nft, "-f", "-", input=ruleset, inside=True)
        self._blackholed = True

    def heal(self) -> None:
        """Let packets through again (a no-op when the link is not blackholed)."""
        if self._blackholed:
            self._run(self._nft, "delete", "table", "inet", FAULT_TABLE, inside=True)
            self._blackholed = False

    def close(self) -> None:
        """Stop the forwarder (both devices go with it), kill what runs inside, delete the
        namespace. Safe to call more than once."""
        if self.forwarder is not None:
            if self.forwarder.poll() is None:
                self.forwarder.kill()
            self.forwarder.wait(COMMAND_TIMEOUT)
            self.forwarder = None
        if self._created:
            pids = subprocess.run(
                [self._ip, "netns", "pids", self.name], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run([self._ip, "netns", "del", self.name], capture_output=True)
            self._created = False

    def __enter__(self) -> NetworkNamespace:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def redis_in(namespace: NetworkNamespace) -> RedisServer:
    """A :class:`~channels_core.testing.redis.RedisServer` that runs inside *namespace* and
    listens on its address (a ``with`` block starts it; :meth:`RedisServer.kill` and
    :meth:`RedisServer.start` work as usual)."""
    # Protected mode refuses clients from other addresses than loopback; only the link's
    # other end can reach this one.
    return RedisServer(
        host=namespace.address,
        launcher=namespace.launcher,
        extra_args=["--protected-mode", "no"],
    )


def forward(first: int, second: int, delay: float) -> None:
    """Copy each IP packet read from TUN descriptor *first* to *second* and back, *delay*
    seconds after it was read, in order, until killed (the forwarding process's loop)."""
    queues: dict[int, deque[tuple[float, bytes]]] = {first: deque(), second: deque()}
    other = {first: second, second: first}
    for fd in queues:
        os.set_blocking(fd, False)
    while True:
        now = time.monotonic()
        for fd, queue in queues.items():
            while queue and queue[0][0] <= now:
                with contextlib.suppress(OSError):  # a device going down drops the packet
                    os.write(fd, queue.popleft()[1])
        due = [queue[0][0] for queue in queues.values() if queue]
        timeout = max(0.0, min(due) - now) if due else None
        readable, _, _ = select.select(list(queues), [], [], timeout)
        read_at = time.monotonic()
        for fd in readable:
            with contextlib.suppress(BlockingIOError):
                while True:
                    queues[other[fd]].append((read_at + delay, os.read(fd, 65536)))


__all__ = ["ADDRESS_RANGE", "NetworkNamespace", "forward", "redis_in"]

if __name__ == "__main__":
    forward(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
