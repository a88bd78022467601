"""RFC 6455 frames without I/O: bytes in, messages out; messages in, bytes out.

:class:`FrameCodec` is one side of a WebSocket connection. ``receive(data)`` parses what the
peer sent and returns typed events, :class:`TextMessage`, :class:`BinaryMessage`,
:class:`Ping`, :class:`Pong` or :class:`Close`, to dispatch on with ``type(event) is
TextMessage`` or ``match``; anything the RFC forbids raises :class:`ProtocolError`, whose
``code`` is the close code to send (1002 protocol error, 1007 invalid UTF-8, 1009 too big).
``text()``, ``binary()``, ``ping()``, ``pong()`` and ``close()`` build frames to write. The
server side expects masked frames and sends unmasked ones; the client side (``client=True``,
for :mod:`channels_ws.testing`) the other way round.

Messages may be compressed with permessage-deflate (RFC 7692) when a :class:`Deflate` is
given; decompression is bounded by the maximum message size, so a small compressed message
cannot expand without limit.
"""

from __future__ import annotations

import codecs
import json as _json
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA
DATA_OPCODES = frozenset((TEXT, BINARY))
CONTROL_OPCODES = frozenset((CLOSE, PING, PONG))

NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
NO_STATUS = 1005
ABNORMAL_CLOSURE = 1006
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012
TRY_AGAIN_LATER = 1013
# Codes a peer may send in a close frame: the RFC's, IANA's 1012-1014, and 3000-4999.
_SENDABLE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))

MAX_CONTROL_PAYLOAD = 125
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
_utf8_decoder = codecs.getincrementaldecoder("utf-8")
# Looked up once: on 3.11 ``int.from_bytes`` costs a slow attribute lookup at every call, and
# apply_mask makes two calls for every frame.
_int_from_bytes = int.from_bytes


# The events receive() returns. Not frozen: a frozen dataclass's __init__ costs about twice
# as much, and one is built for every message.
@dataclass(slots=True)
class TextMessage:
    """A whole text message."""

    text: str


@dataclass(slots=True)
class BinaryMessage:
    """A whole binary message."""

    data: bytes


@dataclass(slots=True)
class Ping:
    """A ping; answer it with a pong carrying the same *payload*."""

    payload: bytes


@dataclass(slots=True)
class Pong:
    """A pong (the answer to a ping, or unsolicited)."""

    payload: bytes


@dataclass(slots=True)
class Close:
    """A close frame with its *code* (1005 when it had none); nothing after it is read."""

    code: int


Event = TextMessage | BinaryMessage | Ping | Pong | Close


class ProtocolError(Exception):
    """The peer broke RFC 6455 (or a size limit); ``code`` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def valid_close_code(code: int) -> bool:
    """True when *code* may appear in a close frame on the wire."""
    return code in _SENDABLE or 3000 <= code <= 4999


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR *data* with the 4-byte *mask* (masking and unmasking are the same operation)."""
    length = len(data)
    # One big-integer XOR is far faster in CPython than a loop over bytes.
    repeated = (mask * (length // 4 + 1))[:length]
    return (_int_from_bytes(data, "big") ^ _int_from_bytes(repeated, "big")).to_bytes(length, "big")


def _message(opcode: int, payload: bytes) -> TextMessage | BinaryMessage:
    """The event of a whole message's payload; :class:`ProtocolError` 1007 for bad UTF-8."""
    if opcode == BINARY:
        return BinaryMessage(payload)
    try:
        return TextMessage(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError(INVALID_DATA, "text message is not valid UTF-8") from None


class Deflate:
    """Negotiated permessage-deflate parameters, and the zlib state they imply.

    The compressor and decompressor are created on first use, so an idle connection holds no
    zlib state; with ``*_no_context_takeover`` they are dropped after each message.
    """

    __slots__ = (
        "_compressor",
        "_decompressor",
        "local_max_window_bits",
        "local_no_context_takeover",
        "remote_no_context_takeover",
    )

    def __init__(
        self,
        local_no_context_takeover: bool = False,
        remote_no_context_takeover: bool = False,
        local_max_window_bits: int = 15,
    ) -> None:
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self._compressor = None
        self._decompressor = None

    def compress(self, data: bytes) -> bytes:
        """One message's payload, compressed, without the trailing ``00 00 ff ff``."""
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.local_max_window_bits
            )
        data = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        self._compressor = None if self.local_no_context_takeover else compressor
        return data[:-4] if data.endswith(_DEFLATE_TAIL) else data

    def decompress(self, data: bytes, limit: int) -> bytes:
        """One message's payload, decompressed; :class:`ProtocolError` 1009 past *limit*."""
        decompressor = self._decompressor
        if decompressor is None:
            # A 15-bit window reads anything a smaller window wrote.
            decompressor = zlib.decompressobj(-15)
        try:
            result = decompressor.decompress(data + _DEFLATE_TAIL, limit + 1)
        except zlib.error as error:
            raise ProtocolError(PROTOCOL_ERROR, f"invalid compressed data: {error}") from None
        if len(result) > limit or decompressor.unconsumed_tail:
            raise ProtocolError(
                MESSAGE_TOO_BIG, f"message larger than {limit} bytes once decompressed"
            )
        self._decompressor = None if self.remote_no_context_takeover else decompressor
        return result


class FrameCodec:
    """One side of a WebSocket connection's framing; see the module docstring.

    :param max_message_size: the largest message accepted, in bytes (after decompression).
    :param max_frame_size: the largest single frame payload accepted, in bytes.
    :param deflate: the negotiated permessage-deflate state, or None.
    :param client: True for the client side (sends masked, expects unmasked frames).
    """

    __slots__ = (
        "_buffer",
        "_compressed",
        "_decoder",
        "_fragments",
        "_message_opcode",
        "_message_size",
        "client",
        "deflate",
        "max_frame_size",
        "max_message_size",
    )

    def __init__(
        self,
        max_message_size: int = 1 << 20,
        max_frame_size: int = 1 << 20,
        deflate: Deflate | None = None,
        client: bool = False,
    ) -> None:
        self.max_message_size = max_message_size
        self.max_frame_size = max_frame_size
        self.deflate = deflate
        self.client = client
        self._buffer = b""
        self._message_opcode = 0  # the opcode of the fragmented message in progress, or 0
        self._message_size = 0
        self._fragments: list = []
        self._compressed = False
        self._decoder = None

    # Parsing ----------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        """The events completed by *data*; :class:`ProtocolError` when the peer broke a rule."""
        buffer = self._buffer + data if self._buffer else data
        events: list[Event] = []
        position = 0
        size = len(buffer)
        while size - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length = second & 0x7F
            header = 2
            if length == 126:
                if size - position < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, position + 2)
                header = 4
            elif length == 127:
                if size - position < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, position + 2)
                header = 10
            masked = second & 0x80
            if bool(masked) == self.client:
                side = "server frames must not" if self.client else "client frames must"
                raise ProtocolError(PROTOCOL_ERROR, f"{side} be masked")
            if masked:
                header += 4
            opcode = first & 0x0F
            self._check_header(first, opcode, length)
            end = position + header + length
            if end > size:
                break
            payload = buffer[position + header : end]
            if masked:
                payload = apply_mask(payload, buffer[end - length - 4 : end - length])
            position = end
            if 0x81 <= first <= 0x82:
                # The common case (FIN, no RSV bit, text or binary): a whole uncompressed message.
                events.append(_message(opcode, payload))
            elif opcode >= CLOSE:
                events.append(self._control(opcode, payload))
                if opcode == CLOSE:
                    position = size  # nothing after a close frame counts
                    break
            else:
                event = self._fragment(first, opcode, payload)
                if event is not None:
                    events.append(event)
        self._buffer = buffer[position:] if position < size else b""
        return events

    def _check_header(self, first: int, opcode: int, length: int) -> None:
        """Refuse a frame as soon as its header shows it breaks a rule."""
        if first & 0x30 or (first & 0x40 and (self.deflate is None or opcode not in DATA_OPCODES)):
            raise ProtocolError(PROTOCOL_ERROR, "reserved bits set without a negotiated extension")
        if opcode in DATA_OPCODES:
            if self._message_opcode:
                raise ProtocolError(PROTOCOL_ERROR, "new message before the last one ended")
        elif opcode == CONTINUATION:
            if not self._message_opcode:
                raise ProtocolError(PROTOCOL_ERROR, "continuation frame without a message")
        elif opcode in CONTROL_OPCODES:
            if not first & 0x80:
                raise ProtocolError(PROTOCOL_ERROR, "fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                raise ProtocolError(PROTOCOL_ERROR, "control frame payload over 125 bytes")
            return
        else:
            raise ProtocolError(PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        if length > self.max_frame_size:
            raise ProtocolError(MESSAGE_TOO_BIG, f"frame larger than {self.max_frame_size} bytes")
        # Compressed messages are bounded on the wire too: a deflated message bigger than the
        # limit (deflate adds only a few bytes to incompressible data) inflates past it.
        if self._message_size + length > self.max_message_size:
            raise ProtocolError(
                MESSAGE_TOO_BIG, f"message larger than {self.max_message_size} bytes"
            )

    def _fragment(self, first: int, opcode: int, payload: bytes) -> Event | None:
        """The message a fragment (or a compressed frame) finishes, or None for one that
        does not finish it."""
        fin = first & 0x80
        if opcode:
            self._message_opcode = opcode
            self._compressed = bool(first & 0x40)
            self._message_size = 0
            if opcode == TEXT and not self._compressed:
                self._decoder = _utf8_decoder()
        self._message_size += len(payload)
        if self._decoder is not None:
            try:
                self._fragments.append(self._decoder.decode(payload, bool(fin)))
            except UnicodeDecodeError:
                raise ProtocolError(INVALID_DATA, "text message is not valid UTF-8") from None
        else:
            self._fragments.append(payload)
        if not fin:
            return None
        opcode, fragments = self._message_opcode, self._fragments
        self._message_opcode, self._fragments, self._message_size = 0, [], 0
        if self._decoder is not None:
            self._decoder = None
            return TextMessage("".join(fragments))
        compressed, self._compressed = self._compressed, False
        payload = b"".join(fragments)
        if compressed:
            payload = self.deflate.decompress(payload, self.max_message_size)
        return _message(opcode, payload)

    def _control(self, opcode: int, payload: bytes) -> Ping | Pong | Close:
        if opcode == PING:
            return Ping(payload)
        if opcode == PONG:
            return Pong(payload)
        if not payload:
            return Close(NO_STATUS)
        if len(payload) == 1:
            raise ProtocolError(PROTOCOL_ERROR, "close frame with a one-byte payload")
        code = int.from_bytes(payload[:2], "big")
        if not valid_close_code(code):
            raise ProtocolError(PROTOCOL_ERROR, f"invalid close code {code}")
        try:
            payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(INVALID_DATA, "close reason is not valid UTF-8") from None
        return Close(code)

    # Serializing ------------------------------------------------------------------------

    def frame(self, opcode: int, payload: bytes, rsv1: bool = False, fin: bool = True) -> bytes:
        """One frame with *payload*, masked on the client side."""
        length = len(payload)
        first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        mask_bit = 0x80 if self.client else 0
        if length < 126:
            header = bytes((first, mask_bit | length))
        elif length < 65536:
            header = struct.pack("!BBH", first, mask_bit | 126, length)
        else:
            header = struct.pack("!BBQ", first, mask_bit | 127, length)
        if self.client:
            mask = os.urandom(4)
            return header + mask + apply_mask(payload, mask)
        return header + payload

    def _data(self, opcode: int, payload: bytes) -> bytes:
        if self.deflate is not None:
            return self.frame(opcode, self.deflate.compress(payload), rsv1=True)
        return self.frame(opcode, payload)

    def text(self, text: str) -> bytes:
        """A text message."""
        return self._data(TEXT, text.encode("utf-8"))

    def binary(self, data: bytes) -> bytes:
        """A binary message."""
        return self._data(BINARY, data)

    def ping(self, payload: bytes = b"") -> bytes:
        """A ping frame."""
        return self.frame(PING, payload)

    def pong(self, payload: bytes = b"") -> bytes:
        """A pong frame (the answer to a ping, with its payload)."""
        return self.frame(PONG, payload)

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> bytes:
        """A close frame; *code* must be one a peer may send (1005 sends an empty frame)."""
        if code == NO_STATUS:
            return self.frame(CLOSE, b"")
        if not valid_close_code(code):
            raise ValueError(
                f"WebSocket close code {code!r} may not be sent; use 1000, 1001-1003, "
                "1007-1014, or an application code from 3000 to 4999."
            )
        return self.frame(CLOSE, code.to_bytes(2, "big") + reason.encode("utf-8")[:123])


def positioned_text(text: str | None, position: Any = None, **extra: Any) -> str | None:
    """The text of a reply, with the group-history *position* a layer gave its message (and
    *extra* keys) added when the text is a JSON object: ``{"text": "{...}", "position": [e,
    o]}`` is sent as ``{..., "position": [e, o]}``, so that a browser can resume from it.

    The keys go last, so they win over keys of the same name; any other text is unchanged.
    """
    if text is None or (position is None and not extra):
        return text
    body = text.rstrip()
    if not body.startswith("{") or not body.endswith("}"):
        return text
    added = ({"position": position} if position is not None else {}) | extra
    keys = _json.dumps(added, separators=(",", ":"))[1:-1]
    inner = body[1:-1].strip()
    return "{" + (f"{inner},{keys}" if inner else keys) + "}"
