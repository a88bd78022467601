"""The UDP protocol's logic without I/O: listen addresses, token buckets, log throttling.

Every time is passed in (``now``, in seconds from :func:`time.monotonic`), so tests drive
these classes with made-up clocks.
"""

from __future__ import annotations

import ipaddress
import math


def parse_address(value: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:9000"`` for IPv6) as ``(host, port)``.

    The host must be an IP address (UDP replies go to addresses, not names); port 0 asks the
    system for a free port. Raises :class:`ValueError` with a sentence saying what to write.
    """
    host, separator, port = str(value).rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if not separator or not host:
            raise ValueError
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a UDP address: write HOST:PORT with an IP address, such as "
            "127.0.0.1:9000 or [::1]:9000"
        ) from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{value!r} has the port {number}: use a port between 0 and 65535")
    return host, number


class TokenBucket:
    """At most ``burst`` datagrams at once, refilled at ``rate`` per second.

    ``take(now)`` spends one token and says whether there was one. The bucket starts full.
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        """Spend a token if there is one; False means the datagram is over the limit."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1:
            self.tokens = tokens - 1
            return True
        self.tokens = tokens
        return False


class Occurrences:
    """Counts one kind of event and says when to log it: at once, then once per *interval*.

    ``add(now)`` returns how many occurrences the log line should report (those since the
    last line, this one included), or 0 when it is too early for another line. ``total``
    counts them all.
    """

    __slots__ = ("interval", "next_report", "total", "unreported")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.total = 0
        self.unreported = 0
        self.next_report = -math.inf

    def add(self, now: float) -> int:
        """Count one occurrence; the number to report now, or 0 to stay quiet."""
        self.total += 1
        self.unreported += 1
        if now < self.next_report:
            return 0
        reported, self.unreported = self.unreported, 0
        self.next_report = now + self.interval
        return reported
