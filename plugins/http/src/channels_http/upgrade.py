"""Handing a connection to another protocol after an HTTP ``Upgrade`` request.

When a request carries ``Connection: upgrade`` and ``Upgrade: <token>`` and an enabled
protocol registered ``upgrade=<token>`` (``server.upgrade_handler(token)`` is not None), the
HTTP protocol stops parsing, builds a :class:`~channels_core.protocols.UpgradeRequest` and
calls :func:`hand_over`. From then on the HTTP protocol is detached: it has unbound its reply
channel and cancelled its timers, and it never writes to the transport again. Without a
handler the request is served as a normal HTTP request and the connection closed after it.
"""

from __future__ import annotations

from typing import Any

from channels_core.protocols import ConnectionHandler, UpgradeHandler, UpgradeRequest


def upgrade_token(headers: list[list[bytes]]) -> str | None:
    """The ``Upgrade`` token of a request asking to switch protocols, lower-cased, or None.

    The request must list ``upgrade`` among its ``Connection`` options; the first token of
    ``Upgrade`` (``websocket`` in ``Upgrade: websocket, h2c``) is the one taken.
    """
    connection_options: set[bytes] = set()
    upgrade = None
    for name, value in headers:
        if name == b"connection":
            connection_options.update(part.strip().lower() for part in value.split(b","))
        elif name == b"upgrade" and upgrade is None:
            upgrade = value
    if upgrade is None or b"upgrade" not in connection_options:
        return None
    token = upgrade.split(b",")[0].strip().lower()
    return token.decode("latin-1") or None


def hand_over(server: Any, handler: UpgradeHandler, request: UpgradeRequest, transport: Any) -> Any:
    """Give *transport* to the protocol *handler* builds for *request*; return that protocol.

    In order: ``protocol = handler(server, request, transport)``; the transport is pointed at
    it (``transport.wrappedProtocol`` for TLS, whose transport wraps the socket's,
    ``transport.protocol`` otherwise) so that later bytes and the connection's loss reach it;
    ``protocol.makeConnection(transport)``; then ``protocol.dataReceived(request.leftover)``
    when the client already sent bytes after the request head. The handler must not call
    ``makeConnection`` itself. Nothing has been written to the transport for this request:
    the new protocol writes its own response (``101 Switching Protocols``, or a refusal).
    """
    protocol = handler(server, request, transport)
    if hasattr(transport, "wrappedProtocol"):
        transport.wrappedProtocol = protocol
    else:
        transport.protocol = protocol
    protocol.makeConnection(transport)
    if request.leftover:
        protocol.dataReceived(request.leftover)
    return protocol


def take_over(server: Any, handler: ConnectionHandler, transport: Any, data: bytes) -> Any:
    """Give the whole connection *transport* to the protocol *handler* builds (HTTP/2 on a
    connection that began with its preface or negotiated ``h2``); return that protocol.

    As :func:`hand_over`, before any request: ``protocol = handler(server, transport)``, the
    transport pointed at it, ``protocol.makeConnection(transport)``, then
    ``protocol.dataReceived(data)`` with the bytes received so far.
    """
    protocol = handler(server, transport)
    if hasattr(transport, "wrappedProtocol"):
        transport.wrappedProtocol = protocol
    else:
        transport.protocol = protocol
    protocol.makeConnection(transport)
    if data:
        protocol.dataReceived(data)
    return protocol
