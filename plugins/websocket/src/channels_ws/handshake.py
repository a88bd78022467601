"""The opening handshake without I/O: check an upgrade request, build the responses.

:func:`check_request` validates the request the HTTP listener handed over (RFC 6455 section
4.2.1 and the ``Origin`` against the allowed hosts) and returns a :class:`Handshake`, or raises
:class:`HandshakeError` carrying the HTTP status to answer with. :meth:`Handshake.accept`
gives the ``101 Switching Protocols`` bytes and the negotiated permessage-deflate state;
:func:`reject` the bytes of a refusal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from channels_core.headers import checked_header

from .frames import Deflate

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSION = b"13"
# What the 101 response sets itself: a consumer's header of these names is left out.
HANDSHAKE_HEADERS = frozenset(
    (
        b"upgrade",
        b"connection",
        b"sec-websocket-accept",
        b"sec-websocket-protocol",
        b"sec-websocket-extensions",
    )
)


class HandshakeError(Exception):
    """The upgrade request cannot be accepted; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key + GUID, usedforsecurity=False).digest())


def _tokens(values: Iterable[bytes]) -> list[bytes]:
    """The comma-separated tokens of header *values*, stripped, lower-cased."""
    return [token.strip().lower() for value in values for token in value.split(b",")]


def origin_allowed(origin: bytes, allowed_hosts: Sequence[str]) -> bool:
    """True when the host of *origin* matches *allowed_hosts* (Django ``ALLOWED_HOSTS`` rules).

    ``"*"`` allows any origin, ``".example.com"`` the domain and its subdomains. A browser
    sends ``Origin: null`` from sandboxed pages, which no host matches.
    """
    from django.http.request import split_domain_port, validate_host

    try:
        host = urlsplit(origin.decode("latin-1")).netloc
    except ValueError:
        return False
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, list(allowed_hosts))


def negotiate_deflate(offers: list[bytes]) -> tuple[bytes, Deflate] | None:
    """The response parameters and state for the first acceptable permessage-deflate offer.

    An offer with an unknown, repeated or invalid parameter is declined (RFC 7692 section
    5), and so is ``server_max_window_bits=8``, which zlib cannot produce for raw deflate.
    """
    for offer in offers:
        name, *raw_params = (part.strip() for part in offer.split(b";"))
        if name.lower() != b"permessage-deflate":
            continue
        params: dict[bytes, bytes | None] = {}
        for raw in raw_params:
            key, equals, value = raw.partition(b"=")
            key = key.strip().lower()
            if key in params:
                break
            params[key] = value.strip().strip(b'"') if equals else None
        else:
            accepted = _accept_deflate(params)
            if accepted is not None:
                return accepted
    return None


def _window_bits(value: bytes | None) -> int | None:
    if value is None or not value.isdigit() or not 8 <= int(value) <= 15:
        return None
    return int(value)


def _accept_deflate(params: dict[bytes, bytes | None]) -> tuple[bytes, Deflate] | None:
    response = [b"permessage-deflate"]
    server_bits = 15
    for key, value in params.items():
        if key in (b"server_no_context_takeover", b"client_no_context_takeover"):
            if value is not None:
                return None
            response.append(key)
        elif key == b"server_max_window_bits":
            bits = _window_bits(value)
            if bits is None or bits == 8:
                return None
            server_bits = bits
            response.append(b"server_max_window_bits=%d" % bits)
        elif key == b"client_max_window_bits":
            # The client may use a smaller window; a 15-bit decompressor reads any of them.
            if value is not None and _window_bits(value) is None:
                return None
        else:
            return None
    deflate = Deflate(
        local_no_context_takeover=b"server_no_context_takeover" in params,
        remote_no_context_takeover=b"client_no_context_takeover" in params,
        local_max_window_bits=server_bits,
    )
    return b"; ".join(response), deflate


@dataclass(frozen=True)
class Handshake:
    """A valid opening handshake: the client's key, and what it offered."""

    key: bytes
    subprotocols: tuple[str, ...]
    extensions: tuple[bytes, ...]

    def accept(
        self,
        subprotocol: str | None = None,
        compression: bool = True,
        headers: Iterable[Sequence[bytes | str]] = (),
    ) -> tuple[bytes, Deflate | None]:
        """The 101 response and the negotiated deflate state (None when not negotiated).

        *subprotocol* must be one the client offered (ValueError otherwise). *headers* are
        ``[name, value]`` pairs the consumer adds (``Set-Cookie``...), each checked by
        :func:`channels_core.headers.checked_header`, which raises
        :class:`~channels_core.headers.InvalidHeader` for one that must not be written; those
        the handshake sets itself are left out.
        """
        lines = [
            b"HTTP/1.1 101 Switching Protocols",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Accept: " + accept_key(self.key),
        ]
        for name, value in headers:
            name, value = checked_header(name, value)
            if name.lower() not in HANDSHAKE_HEADERS:
                lines.append(b"%s: %s" % (name, value))
        if subprotocol is not None:
            if subprotocol not in self.subprotocols:
                raise ValueError(
                    f"The consumer accepted with subprotocol {subprotocol!r}, which the client "
                    f"did not offer (offered: {list(self.subprotocols)}); pick one of those."
                )
            lines.append(b"Sec-WebSocket-Protocol: " + subprotocol.encode("ascii"))
        deflate = None
        if compression and self.extensions:
            negotiated = negotiate_deflate(list(self.extensions))
            if negotiated is not None:
                parameters, deflate = negotiated
                lines.append(b"Sec-WebSocket-Extensions: " + parameters)
        return b"\r\n".join(lines) + b"\r\n\r\n", deflate


def check_request(
    method: str, headers: list[list[bytes]], allowed_hosts: Sequence[str] | None
) -> Handshake:
    """Validate an upgrade request; :class:`HandshakeError` says why it is refused.

    *headers* are ``[name, value]`` byte pairs with lower-case names. *allowed_hosts* are the
    hosts an ``Origin`` header may name (None: any); a request without ``Origin`` (not from a
    browser) is not checked.
    """
    values: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        values.setdefault(name, []).append(value)
    if method != "GET":
        raise HandshakeError(HTTPStatus.METHOD_NOT_ALLOWED, f"method {method} is not GET")
    if b"websocket" not in _tokens(values.get(b"upgrade", ())):
        raise HandshakeError(HTTPStatus.BAD_REQUEST, "no 'Upgrade: websocket' header")
    if b"upgrade" not in _tokens(values.get(b"connection", ())):
        raise HandshakeError(HTTPStatus.BAD_REQUEST, "no 'Connection: Upgrade' header")
    if values.get(b"sec-websocket-version") != [VERSION]:
        raise HandshakeError(HTTPStatus.UPGRADE_REQUIRED, "Sec-WebSocket-Version is not 13")
    keys = values.get(b"sec-websocket-key", [])
    try:
        valid_key = len(keys) == 1 and len(base64.b64decode(keys[0], validate=True)) == 16
    except binascii.Error:
        valid_key = False
    if not valid_key:
        raise HandshakeError(HTTPStatus.BAD_REQUEST, "missing or invalid Sec-WebSocket-Key")
    origins = values.get(b"origin")
    if origins and allowed_hosts is not None and not origin_allowed(origins[0], allowed_hosts):
        raise HandshakeError(
            HTTPStatus.FORBIDDEN, f"origin {origins[0].decode('latin-1')!r} is not allowed"
        )
    subprotocols = tuple(
        token.strip().decode("latin-1")
        for value in values.get(b"sec-websocket-protocol", ())
        for token in value.split(b",")
        if token.strip()
    )
    extensions = tuple(
        offer.strip()
        for value in values.get(b"sec-websocket-extensions", ())
        for offer in value.split(b",")
        if offer.strip()
    )
    return Handshake(keys[0], subprotocols, extensions)


def reject(status: int, reason: str = "") -> bytes:
    """The bytes of an HTTP refusal with *status*, closing the connection."""
    phrase = HTTPStatus(status).phrase
    body = f"{status} {phrase}: {reason}\n" if reason else f"{status} {phrase}\n"
    extra = "Sec-WebSocket-Version: 13\r\n" if status == HTTPStatus.UPGRADE_REQUIRED else ""
    return (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body.encode())}\r\n{extra}Connection: close\r\n\r\n{body}"
    ).encode()
