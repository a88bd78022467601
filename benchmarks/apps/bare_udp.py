"""The bare UDP reference: the same echo on Twisted's DatagramProtocol, nothing else.

The reactor is set up as ``channels serve`` sets up its own (Twisted's asyncio reactor on a
uvloop event loop, through the same two functions), so the difference from ours is the
Channels machinery alone: events, routing, the consumer and the reply channel.

Usage::

    python benchmarks/apps/bare_udp.py PORT
"""

from __future__ import annotations

import signal
import sys

from twisted.internet.protocol import DatagramProtocol

from channels_core.server import install_reactor, new_event_loop


class Echo(DatagramProtocol):
    """Send every datagram back to where it came from."""

    def datagramReceived(self, data: bytes, address: tuple[str, int]) -> None:
        self.transport.write(data, address)


def main() -> None:
    """Listen on 127.0.0.1:PORT until SIGTERM."""
    loop = new_event_loop()
    reactor = install_reactor(loop)
    reactor.listenUDP(int(sys.argv[1]), Echo(), interface="127.0.0.1")
    loop.add_signal_handler(signal.SIGTERM, reactor.stop)
    reactor.run(installSignalHandlers=False)


if __name__ == "__main__":
    main()
