"""Writing to Twisted transports without waiting for the next loop turn.

Twisted's ``transport.write`` only queues the bytes and asks the reactor to say when the
socket is writable; the bytes leave on the next turn of the loop, and the writer is then
unregistered again. For a small reply to a socket whose kernel buffer has room, that costs a
loop turn and two ``epoll_ctl`` calls per message (measured in ``benchmarks/README.md``).
:func:`write` sends at once instead, and hands the rest to Twisted only when the socket
cannot take everything; from then on every write of that connection goes through Twisted,
so bytes never overtake one another.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp, unix

# Plain stream sockets: TLS transports must encrypt, so they always go through Twisted.
_DIRECT_TYPES = (tcp.Server, unix.Server)
# Set on a transport once Twisted holds queued bytes for it.
_QUEUED = "_channels_queued"


def write(transport: Any, data: bytes) -> None:
    """Write *data* to *transport*: straight to its socket when nothing is queued."""
    if (
        type(transport) not in _DIRECT_TYPES
        or transport.__dict__.get(_QUEUED)
        or transport.disconnecting
        or not transport.connected
    ):
        transport.write(data)
        return
    try:
        sent = transport.socket.send(data)
    except BlockingIOError:
        sent = 0
    except OSError:
        # A reset or broken connection: Twisted reports it through connectionLost.
        transport.write(data)
        return
    if sent < len(data):
        transport.__dict__[_QUEUED] = True
        transport.write(data[sent:])
