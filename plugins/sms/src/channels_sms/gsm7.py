"""The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 6.2.1), and the
packing of its septets into octets (TS 23.038 6.1.2.1), without I/O.

:mod:`channels_sms.pdu` builds and reads SMS user data with these; text mode
(:mod:`channels_sms.textmode`) shows and takes the same septets.
"""

from __future__ import annotations

# The GSM 7-bit default alphabet (TS 23.038 6.2.1); position 27 is the escape to the
# extension table, which no text character maps to.
GSM7_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
ESCAPE = 0x1B
CARRIAGE_RETURN = 0x0D
GSM7_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_GSM7_CODES = {char: code for code, char in enumerate(GSM7_ALPHABET) if code != ESCAPE}
_GSM7_EXTENSION_CHARS = {code: char for char, code in GSM7_EXTENSION.items()}


def gsm7_septets(text: str) -> list[int] | None:
    """*text* as GSM 7-bit septets (extension characters take two), or None if it does not
    fit the alphabet."""
    septets = []
    for char in text:
        code = _GSM7_CODES.get(char)
        if code is not None:
            septets.append(code)
        elif char in GSM7_EXTENSION:
            septets += (ESCAPE, GSM7_EXTENSION[char])
        else:
            return None
    return septets


def gsm7_text(septets: list[int]) -> str:
    """The text of GSM 7-bit *septets*; an unknown extension code reads as a space."""
    chars = []
    escaped = False
    for septet in septets:
        if escaped:
            chars.append(_GSM7_EXTENSION_CHARS.get(septet, " "))
            escaped = False
        elif septet == ESCAPE:
            escaped = True
        else:
            chars.append(GSM7_ALPHABET[septet])
    return "".join(chars)


def pack_septets(septets: list[int], fill: int = 0) -> bytes:
    """Pack septets into octets, least significant bit first, after *fill* zero bits."""
    packed = bytearray()
    accumulator, bits = 0, fill
    for septet in septets:
        accumulator |= septet << bits
        bits += 7
        while bits >= 8:
            packed.append(accumulator & 0xFF)
            accumulator >>= 8
            bits -= 8
    if bits:
        packed.append(accumulator & 0xFF)
    return bytes(packed)


def unpack_septets(data: bytes, count: int, fill: int = 0) -> list[int]:
    """The first *count* septets packed in *data* after *fill* bits; septets past the end of
    *data* read as 0, so a caller with a length from a PDU checks it first."""
    value = int.from_bytes(data, "little") >> fill
    return [(value >> (7 * index)) & 0x7F for index in range(count)]
