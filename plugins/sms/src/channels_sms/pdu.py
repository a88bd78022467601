"""SMS PDUs without I/O (3GPP TS 23.040 and 23.038): what a GSM modem reads and writes in
PDU mode.

Encoding: :func:`encode_submit` turns a number and a text into the SMS-SUBMIT PDUs to hand
to ``AT+CMGS``: the GSM 7-bit default alphabet (with its extension table) when the text fits
it, UCS2 (UTF-16, so emoji travel as surrogate pairs, as phones send them) otherwise, split
into concatenated parts with an 8-bit concatenation header when it is too long for one.
:func:`encode_deliver` and :func:`encode_status_report` build what a network would deliver;
the modem simulator in :mod:`channels_sms.testing` uses them.

Decoding: :func:`decode` reads an SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT PDU (with the
SMSC address a modem puts in front) into a :class:`Deliver`, :class:`Submit` or
:class:`StatusReport`.

The GSM 7-bit alphabet and septet packing are in :mod:`channels_sms.gsm7`.

Bad input raises :class:`PduError` (a ``ValueError``) with a sentence saying what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from .gsm7 import (
    CARRIAGE_RETURN,
    ESCAPE,
    gsm7_septets,
    gsm7_text,
    pack_septets,
    unpack_septets,
)
from .gsm7 import GSM7_ALPHABET as GSM7_ALPHABET  # re-exported: part of this module's API

GSM7, DATA8, UCS2 = "gsm7", "8bit", "ucs2"
DCS = {GSM7: 0x00, DATA8: 0x04, UCS2: 0x08}

# User data holds 140 octets: 160 septets, or 70 UTF-16 units; a concatenation header
# (6 octets with its length) leaves 153 septets or 67 units per part.
SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
PART_LIMIT = {GSM7: 153, UCS2: 67}
MAX_PARTS = 255

# Message type indicators (the two low bits of the first octet), as seen by the mobile.
MTI_DELIVER, MTI_SUBMIT, MTI_STATUS_REPORT = 0, 1, 2

PHONE_NUMBER = re.compile(r"^\+?[0-9]{1,20}$")
VALIDITY_4_DAYS = 0xAA


class PduError(ValueError):
    """A PDU cannot be built from the given values, or read from the given hex."""


@dataclass(frozen=True)
class Concatenation:
    """The concatenation header of one part: ``reference`` shared by all parts, ``total``
    parts, this one's ``sequence`` (from 1)."""

    reference: int
    total: int
    sequence: int


@dataclass(frozen=True)
class Deliver:
    """An SMS-DELIVER: a message the network delivered to the modem."""

    sender: str
    text: str
    timestamp: str
    concatenation: Concatenation | None = None
    data: bytes | None = None
    #: The raw fields, which a modem in text mode shows (``+CMGR`` with ``AT+CSDH=1``).
    first_octet: int = 0
    dcs: int = 0
    user_data: bytes = b""


@dataclass(frozen=True)
class Submit:
    """An SMS-SUBMIT: a message the modem was asked to send."""

    recipient: str
    text: str
    status_report: bool
    concatenation: Concatenation | None = None


@dataclass(frozen=True)
class StatusReport:
    """An SMS-STATUS-REPORT: what became of the submitted message ``reference`` (its TP-MR).

    ``status`` is TP-ST; :attr:`outcome` names its class.
    """

    reference: int
    recipient: str
    status: int
    submitted_at: str
    discharged_at: str

    @property
    def outcome(self) -> str:
        """``"delivered"``, ``"pending"`` (the network still tries) or ``"failed"``."""
        if self.status < 0x20:
            return "delivered"
        if self.status < 0x40:
            return "pending"
        return "failed"


# UCS2 --------------------------------------------------------------------------------------


def ucs2_bytes(text: str) -> bytes:
    """*text* as UTF-16 big-endian; a lone surrogate raises :class:`PduError`."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as error:
        bad = text[error.start : error.end]
        raise PduError(
            f"The text has the character {bad!r} at position {error.start}, a lone UTF-16 "
            "surrogate that no SMS alphabet can carry; send valid Unicode text."
        ) from None


# Addresses and timestamps ------------------------------------------------------------------


def check_number(number: object) -> str:
    """*number* if it is a phone number (``+`` and up to 20 digits), else :class:`PduError`."""
    if not isinstance(number, str) or not PHONE_NUMBER.match(number):
        raise PduError(
            f"The recipient {number!r} is not a phone number; give digits with an optional "
            "leading '+' (international form, such as '+4915112345678')."
        )
    return number


def _swap_semi_octets(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2)))


def encode_address(number: str) -> bytes:
    """A TP address: digit count, type (international with ``+``), swapped BCD digits."""
    check_number(number)
    international = number.startswith("+")
    digits = number.lstrip("+")
    return bytes((len(digits), 0x91 if international else 0x81)) + _swap_semi_octets(digits)


def _swapped_digits(data: bytes) -> str:
    return "".join(f"{octet & 0x0F:X}{octet >> 4:X}" for octet in data)


class _Reader:
    """Reads a PDU octet by octet, raising :class:`PduError` when it ends too soon."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise PduError(
                f"The PDU ends after {len(self.data)} octets, in the middle of a field; it is "
                "truncated or not a PDU."
            )
        chunk = self.data[self.position : self.position + count]
        self.position += count
        return chunk

    def octet(self) -> int:
        return self.take(1)[0]

    def address(self) -> str:
        length, kind = self.octet(), self.octet()
        raw = self.take((length + 1) // 2)
        if kind & 0x70 == 0x50:  # alphanumeric sender (a company name), GSM 7-bit packed
            return gsm7_text(unpack_septets(raw, length * 4 // 7))
        digits = _swapped_digits(raw)[:length].rstrip("F")
        return ("+" if kind & 0x70 == 0x10 else "") + digits

    def timestamp(self) -> str:
        raw = self.take(7)
        zone = raw[6]
        quarters = (zone & 0x07) * 10 + (zone >> 4)
        try:
            fields = [int(_swapped_digits(raw[i : i + 1])) for i in range(6)]
        except ValueError:
            raise PduError(f"The PDU's timestamp {raw.hex()} is not a date.") from None
        return make_timestamp(fields, -quarters if zone & 0x08 else quarters, raw.hex())


def make_timestamp(fields: list[int], quarters: int, shown: str) -> str:
    """ISO 8601 for a service-centre timestamp: two-digit year, month, day, hour, minute,
    second, and the offset in quarters of an hour; *shown* names it in the error."""
    year, month, day, hour, minute, second = fields
    # Two-digit years: SMS began in 1992, so 92-99 are the 1990s.
    century = 1900 if year >= 90 else 2000
    try:
        moment = datetime(
            century + year,
            month,
            day,
            hour,
            minute,
            second,
            tzinfo=timezone(timedelta(minutes=15 * quarters)),
        )
    except ValueError as error:
        raise PduError(f"The timestamp {shown!r} is not a date ({error}).") from None
    return moment.isoformat()


def encode_timestamp(moment: datetime) -> bytes:
    """A TP service-centre timestamp for *moment* (which must be timezone-aware)."""
    offset = moment.utcoffset() or timedelta()
    quarters = int(abs(offset.total_seconds()) // 900)
    fields = [moment.year % 100, moment.month, moment.day, moment.hour, moment.minute]
    digits = "".join(f"{value:02d}" for value in (*fields, moment.second))
    zone = _swap_semi_octets(f"{quarters:02d}")[0] | (0x08 if offset < timedelta() else 0)
    return _swap_semi_octets(digits) + bytes((zone,))


# User data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One part of a message: its alphabet, septets or UCS2 octets, concatenation header."""

    alphabet: str
    payload: list[int] | bytes
    concatenation: Concatenation | None


def split_text(text: str, reference: int = 0) -> list[Part]:
    """Split *text* into the parts of one message, GSM 7-bit when it fits, UCS2 otherwise.

    Raises :class:`PduError` for a lone surrogate or a text needing more than 255 parts.
    """
    septets = gsm7_septets(text)
    if septets is not None:
        alphabet, units = GSM7, septets
    else:
        encoded = ucs2_bytes(text)
        alphabet, units = UCS2, [encoded[i : i + 2] for i in range(0, len(encoded), 2)]
    if len(units) <= SINGLE_LIMIT[alphabet]:
        chunks = [units]
    else:
        chunks = []
        start = 0
        while start < len(units):
            end = min(start + PART_LIMIT[alphabet], len(units))
            # Never split an escape from its extension code, nor a surrogate pair.
            last = units[end - 1]
            if end < len(units) and (
                (alphabet == GSM7 and last == ESCAPE)
                or (alphabet == UCS2 and 0xD8 <= last[0] <= 0xDB)
            ):
                end -= 1
            chunks.append(units[start:end])
            start = end
    if len(chunks) > MAX_PARTS:
        raise PduError(
            f"The text is {len(text)} characters long and would need {len(chunks)} parts; "
            f"an SMS has at most {MAX_PARTS}. Send a shorter text."
        )
    total = len(chunks)
    return [
        Part(
            alphabet,
            chunk if alphabet == GSM7 else b"".join(chunk),
            Concatenation(reference % 256, total, sequence) if total > 1 else None,
        )
        for sequence, chunk in enumerate(chunks, 1)
    ]


def submit_first_octet(status_report: bool, header: bool) -> int:
    """The first octet of an SMS-SUBMIT: relative validity, and the report and header bits."""
    return 0x01 | 0x10 | (0x20 if status_report else 0) | (0x40 if header else 0)


def user_data(part: Part) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD) of *part*, with its concatenation header when it has one."""
    header = b""
    if part.concatenation is not None:
        concatenation = part.concatenation
        header = bytes(
            (5, 0x00, 3, concatenation.reference, concatenation.total, concatenation.sequence)
        )
    if part.alphabet == GSM7:
        header_bits = len(header) * 8
        fill = (7 - header_bits % 7) % 7
        length = (header_bits + fill) // 7 + len(part.payload)
        # Seven spare bits at the end hold a CR (TS 23.038 6.1.2.3.1), so a reader that
        # counts septets from octets (a modem in text mode) finds no stray '@'.
        padding = [CARRIAGE_RETURN] if length % 8 == 7 else []
        return length, header + pack_septets([*part.payload, *padding], fill)
    return len(header) + len(part.payload), header + part.payload


def read_user_data(
    data: bytes, dcs: int, header: bool, length: int | None = None
) -> tuple[str, Concatenation | None, bytes | None]:
    """(text, concatenation, 8-bit data) of the TP-UD octets *data*.

    *header* is the first octet's TP-UDHI bit; *length* is TP-UDL, or None when only the
    octets are known (a modem in text mode shows them in hex): then 7-bit text holds every
    septet the octets do, less a CR in seven spare bits (TS 23.038 6.1.2.3.1).
    """
    alphabet = alphabet_of(dcs)
    header_octets = data[0] + 1 if header and data else 0
    if header_octets > len(data):
        raise PduError(
            f"The user data header claims {header_octets} octets; the user data has "
            f"{len(data)}. The message is truncated."
        )
    concatenation = _concatenation(data[1:header_octets]) if header_octets else None
    if alphabet == GSM7:
        header_septets = (header_octets * 8 + 6) // 7
        fill = header_septets * 7 - header_octets * 8
        if length is None:
            count = ((len(data) - header_octets) * 8 - fill) // 7
            septets = unpack_septets(data[header_octets:], count, fill)
            if septets and (count + header_septets) % 8 == 0 and septets[-1] == CARRIAGE_RETURN:
                septets.pop()
        else:
            count = length - header_septets
            if (count * 7 + fill + 7) // 8 > len(data) - header_octets:
                raise PduError(
                    f"The user data holds fewer than the {count} septets its length claims."
                )
            septets = unpack_septets(data[header_octets:], count, fill)
        return gsm7_text(septets), concatenation, None
    length = len(data) if length is None else length
    if len(data) < length:
        raise PduError(f"The user data holds {len(data)} octets, fewer than its length {length}.")
    body = data[header_octets:length]
    if alphabet == UCS2:
        return body.decode("utf-16-be", "replace"), concatenation, None
    return "", concatenation, bytes(body)


def alphabet_of(dcs: int) -> str:
    """The alphabet a TP-DCS names (TS 23.038 section 4)."""
    group = dcs & 0xF0
    if group < 0x40:  # general data coding (compressed text is not supported by modems)
        return (GSM7, DATA8, UCS2, GSM7)[(dcs >> 2) & 3]
    if group == 0xF0:
        return DATA8 if dcs & 0x04 else GSM7
    if group == 0xE0:
        return UCS2
    return GSM7


def _concatenation(header: bytes) -> Concatenation | None:
    """The concatenation element (8- or 16-bit reference) of a user data header, if any."""
    position = 0
    while position + 2 <= len(header):
        element, size = header[position], header[position + 1]
        value = header[position + 2 : position + 2 + size]
        if element == 0x00 and size == 3:
            return Concatenation(value[0], value[1], value[2])
        if element == 0x08 and size == 4:
            return Concatenation(int.from_bytes(value[:2], "big"), value[2], value[3])
        position += 2 + size
    return None


# PDUs ---------------------------------------------------------------------------------------


def encode_submit(
    to: str, text: str, reference: int = 0, status_report: bool = True
) -> list[tuple[str, int]]:
    """The SMS-SUBMIT PDUs sending *text* to *to*, as ``(hex, tpdu_length)`` for
    ``AT+CMGS=<tpdu_length>``; *reference* (0 to 255) ties the parts of a long text together.

    The SMSC address is left to the modem's setting (``AT+CSCA``). Raises :class:`PduError`
    for a bad number, a lone surrogate, or a text too long for 255 parts.
    """
    address = encode_address(to)
    pdus = []
    for part in split_text(text, reference):
        first = submit_first_octet(status_report, part.concatenation is not None)
        length, data = user_data(part)
        tpdu = (
            bytes((first, 0x00))
            + address
            + bytes((0x00, DCS[part.alphabet], VALIDITY_4_DAYS, length))
            + data
        )
        pdus.append(("00" + tpdu.hex().upper(), len(tpdu)))
    return pdus


def _smsc(number: str | None) -> bytes:
    if not number:
        return b"\x00"
    address = encode_address(number)
    return bytes((len(address) - 1,)) + address[1:]


def encode_deliver(
    sender: str,
    text: str,
    timestamp: datetime | None = None,
    reference: int = 0,
    smsc: str | None = "+15550009999",
) -> list[tuple[str, int]]:
    """The SMS-DELIVER PDUs a modem stores when *sender* sends *text*, as
    ``(hex, tpdu_length)``, with the SMSC address in front as modems report it."""
    moment = encode_timestamp(timestamp or datetime.now(UTC))
    pdus = []
    for part in split_text(text, reference):
        length, data = user_data(part)
        first = 0x04 | (0x40 if part.concatenation else 0)
        tpdu = (
            bytes((first,))
            + encode_address(sender)
            + bytes((0x00, DCS[part.alphabet]))
            + moment
            + bytes((length,))
            + data
        )
        pdus.append(((_smsc(smsc) + tpdu).hex().upper(), len(tpdu)))
    return pdus


def encode_status_report(
    reference: int,
    recipient: str,
    status: int = 0,
    submitted: datetime | None = None,
    discharged: datetime | None = None,
    smsc: str | None = "+15550009999",
) -> tuple[str, int]:
    """The SMS-STATUS-REPORT PDU for message *reference* (TP-MR), as ``(hex, tpdu_length)``."""
    now = datetime.now(UTC)
    tpdu = (
        bytes((0x06, reference % 256))
        + encode_address(recipient)
        + encode_timestamp(submitted or now)
        + encode_timestamp(discharged or now)
        + bytes((status,))
    )
    return (_smsc(smsc) + tpdu).hex().upper(), len(tpdu)


def decode(pdu: str) -> Deliver | Submit | StatusReport:
    """Read a PDU in hex, SMSC address first, as a modem lists it."""
    try:
        data = bytes.fromhex(pdu.strip())
    except ValueError:
        raise PduError(f"{pdu[:80]!r} is not a PDU: it is not hexadecimal.") from None
    reader = _Reader(data)
    reader.take(reader.octet())  # the SMSC address
    first = reader.octet()
    kind = first & 0x03
    if kind == MTI_DELIVER:
        sender = reader.address()
        reader.octet()  # TP-PID
        dcs = reader.octet()
        timestamp = reader.timestamp()
        length, data = reader.octet(), reader.data[reader.position :]
        text, concatenation, raw = read_user_data(data, dcs, bool(first & 0x40), length)
        return Deliver(sender, text, timestamp, concatenation, raw, first, dcs, data)
    if kind == MTI_SUBMIT:
        reader.octet()  # TP-MR, assigned by the modem
        recipient = reader.address()
        reader.octet()  # TP-PID
        dcs = reader.octet()
        reader.take({0x10: 1, 0x08: 7, 0x18: 7}.get(first & 0x18, 0))  # TP-VP
        length, data = reader.octet(), reader.data[reader.position :]
        text, concatenation, _ = read_user_data(data, dcs, bool(first & 0x40), length)
        return Submit(recipient, text, bool(first & 0x20), concatenation)
    if kind == MTI_STATUS_REPORT:
        reference = reader.octet()
        recipient = reader.address()
        submitted = reader.timestamp()
        discharged = reader.timestamp()
        return StatusReport(reference, recipient, reader.octet(), submitted, discharged)
    raise PduError(f"The PDU {pdu[:80]!r} has the reserved message type 3; it is not an SMS.")
