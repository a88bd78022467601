"""SMS in text mode (TS 27.005, ``AT+CMGF=1``), without I/O: what a GSM modem reads and
writes when it is driven in text mode with ``AT+CSDH=1`` (header values shown).

Strings on the command line (numbers, 7-bit texts) are in the character set ``AT+CSCS``
chose: ``"UCS2"`` writes each UTF-16 unit as four hex digits, so any text survives the
serial line; ``"GSM"`` writes each GSM 7-bit code as one byte. Message bodies whose data
coding is UCS2 or 8-bit, or that start with a user data header (the concatenation header of
long texts), are the TP-UD octets in hex whatever the character set, as TS 27.005 3.1 says:
the user data itself is read and built by :mod:`channels_sms.pdu`.

Bad input raises :class:`~channels_sms.pdu.PduError` with a sentence saying what was wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import pdu

UCS2, GSM = "UCS2", "GSM"
CHARSETS = (UCS2, GSM)
# Relative validity period 170: four days, as in PDU mode.
VALIDITY = 170
# GSM codes a text-mode line cannot carry as bytes: they end the line, Ctrl-Z ends the text,
# ESC (the extension table's escape) cancels it.
_UNSAFE_GSM_CODES = (0x0A, 0x0D, 0x1A, 0x1B)
_STATUS_WORDS = {0: "REC UNREAD", 1: "REC READ"}
_FIELD = re.compile(r'\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^,"]*?))\s*(?P<end>,|$)')
_TIMESTAMP = re.compile(
    r"^(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)(?P<zone>[+-]\d{1,2})?$",
)
INTERNATIONAL = 145


@dataclass(frozen=True)
class Field:
    """One value of an information line; ``quoted`` tells a string from a number."""

    value: str
    quoted: bool


@dataclass(frozen=True)
class TextPart:
    """One ``AT+CMGS`` in text mode: the ``AT+CSMP`` first octet and data coding it needs,
    the recipient and the body as they are typed."""

    first_octet: int
    dcs: int
    recipient: str
    body: str


# Character sets ----------------------------------------------------------------------------


def encode_string(text: str, charset: str) -> str:
    """*text* as typed in the character set *charset*; PduError for a character it cannot
    carry."""
    if charset == UCS2:
        return pdu.ucs2_bytes(text).hex().upper()
    bad = next((char for char in text if _gsm_unsafe(char)), None)
    if bad is not None:
        raise pdu.PduError(
            f"The text has {bad!r}, which the GSM character set cannot carry on a modem's "
            'command line in text mode; use the charset "UCS2" (the default) or the "pdu" mode.'
        )
    return gsm_bytes(text)


def gsm_bytes(text: str) -> str:
    """*text* (in the GSM 7-bit alphabet) as the bytes a modem writes in the GSM character
    set, line ends and all."""
    return "".join(map(chr, pdu.gsm7_septets(text)))


def _gsm_unsafe(char: str) -> bool:
    codes = pdu.gsm7_septets(char)
    return codes is None or any(code in _UNSAFE_GSM_CODES for code in codes)


def decode_string(text: str, charset: str) -> str:
    """A string the modem wrote in the character set *charset*."""
    if charset == UCS2:
        return _hex(text).decode("utf-16-be", "replace")
    # Bytes above 127 are no GSM code: the serial line garbled them; read them as '?'.
    return pdu.gsm7_text([ord(char) if ord(char) < 128 else 0x3F for char in text])


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text.strip())
    except ValueError:
        raise pdu.PduError(
            f"{text[:80]!r} is not hexadecimal, as the modem's character set or the message's "
            "data coding says it must be."
        ) from None


def _number(field: Field, kind: Field | None, charset: str) -> str:
    number = decode_string(field.value, charset)
    if kind is not None and kind.value == str(INTERNATIONAL) and not number.startswith("+"):
        number = "+" + number
    return number


# Lines -------------------------------------------------------------------------------------


def fields(line: str) -> list[Field]:
    """The comma-separated values after the ``+XXXX:`` of an information line."""
    body = line.partition(":")[2]
    values: list[Field] = []
    position = 0
    while True:
        found = _FIELD.match(body, position)
        if found is None:
            raise pdu.PduError(f"Cannot read the values of the modem's line {line[:120]!r}.")
        quoted = found.group("quoted")
        values.append(Field(found.group("bare") if quoted is None else quoted, quoted is not None))
        if not found.group("end"):
            return values
        position = found.end()


def parse_timestamp(text: str) -> str:
    """``"24/05/06,07:08:09+08"`` (quarters of an hour) as ISO 8601."""
    found = _TIMESTAMP.match(text.strip())
    if found is None:
        raise pdu.PduError(
            f"The timestamp {text!r} is not in the modem's yy/MM/dd,hh:mm:ss±zz form."
        )
    return pdu.make_timestamp(
        [int(value) for value in found.groups()[:6]], int(found.group("zone") or 0), text
    )


def format_timestamp(iso: str) -> str:
    """An ISO 8601 timestamp as a modem shows it in text mode."""
    moment = datetime.fromisoformat(iso)
    quarters = int((moment.utcoffset() or timedelta()).total_seconds() // 900)
    return f"{moment:%y/%m/%d,%H:%M:%S}{quarters:+03d}"


# Reading -----------------------------------------------------------------------------------


def read_message(
    header: str, data: list[str], charset: str
) -> pdu.Deliver | pdu.Submit | pdu.StatusReport:
    """The message an ``AT+CMGR`` answer shows: its ``+CMGR:`` *header* line and the
    *data* lines after it."""
    values = fields(header)
    if len(values) < 2:
        raise pdu.PduError(f"The modem's line {header[:120]!r} names no message.")
    if values[0].value.upper().startswith("STO"):
        # A text stored for sending by someone else: only its kind matters.
        return pdu.Submit(decode_string(values[1].value, charset), "", False)
    if not values[1].quoted and values[1].value.isdigit():
        return _report(values[1:], charset)
    if len(values) < 4:
        raise pdu.PduError(f"The modem's line {header[:120]!r} has no sender and timestamp.")
    sender = _number(values[1], values[4] if len(values) > 4 else None, charset)
    timestamp = parse_timestamp(values[3].value)
    # Without AT+CSDH=1 values, a message reads as 7-bit text (in the UCS2 character set a
    # UCS2 message without a header reads the same).
    try:
        first, dcs = (int(values[5].value), int(values[7].value)) if len(values) >= 11 else (0, 0)
    except ValueError:
        raise pdu.PduError(
            f"The modem's line {header[:120]!r} has a <fo> or <dcs> that is no number."
        ) from None
    body = "\n".join(data)
    if first & 0x40 or pdu.alphabet_of(dcs) != pdu.GSM7:
        user_data = _hex(body)
        text, concatenation, raw = pdu.read_user_data(user_data, dcs, bool(first & 0x40))
        return pdu.Deliver(sender, text, timestamp, concatenation, raw, first, dcs, user_data)
    return pdu.Deliver(sender, decode_string(body, charset), timestamp, first_octet=first)


def read_report(line: str, charset: str) -> pdu.StatusReport:
    """The status report of a ``+CDS: <fo>,<mr>,<ra>,<tora>,<scts>,<dt>,<st>`` line."""
    return _report(fields(line), charset)


def _report(values: list[Field], charset: str) -> pdu.StatusReport:
    try:
        _, reference, recipient, kind, submitted, discharged, status = values[:7]
        return pdu.StatusReport(
            int(reference.value),
            _number(recipient, kind, charset),
            int(status.value),
            parse_timestamp(submitted.value),
            parse_timestamp(discharged.value),
        )
    except ValueError as error:  # too few values, or a number that is none
        raise pdu.PduError(f"The status report {values!r} cannot be read ({error}).") from None


# Writing -----------------------------------------------------------------------------------


def encode_submit(
    to: str, text: str, reference: int, status_report: bool, charset: str
) -> list[TextPart]:
    """The ``AT+CMGS`` parts sending *text* to *to*: 7-bit texts that fit one message are
    typed in *charset*; UCS2 texts and the parts of long texts are their user data in hex
    (the concatenation header first), as SIM800, SIM7600, EC25 and Huawei modems take it."""
    recipient = encode_string(pdu.check_number(to), charset)
    parts = []
    for part in pdu.split_text(text, reference):
        header = part.concatenation is not None
        if part.alphabet == pdu.GSM7 and not header:
            body = encode_string(pdu.gsm7_text(part.payload), charset)
        else:
            body = pdu.user_data(part)[1].hex().upper()
        first = pdu.submit_first_octet(status_report, header)
        parts.append(TextPart(first, pdu.DCS[part.alphabet], recipient, body))
    return parts


def read_submit(recipient: str, first_octet: int, dcs: int, body: str, charset: str) -> pdu.Submit:
    """What a modem makes of ``AT+CMGS="<recipient>"`` and *body* under ``AT+CSMP``'s
    *first_octet* and *dcs* (the simulated modem uses it)."""
    number = pdu.check_number(decode_string(recipient, charset))
    header = bool(first_octet & 0x40)
    if header or pdu.alphabet_of(dcs) != pdu.GSM7:
        text, concatenation, _ = pdu.read_user_data(_hex(body), dcs, header)
    else:
        text, concatenation = decode_string(body, charset), None
        if pdu.gsm7_septets(text) is None:
            raise pdu.PduError(f"The text {text!r} does not fit the GSM 7-bit alphabet.")
    return pdu.Submit(number, text, bool(first_octet & 0x20), concatenation)


def show_message(
    message: pdu.Deliver | pdu.StatusReport, status: int, charset: str, smsc: str
) -> tuple[str, str | None]:
    """The ``+CMGR:`` values and data line a modem shows for *message* (the simulated modem
    uses it); a status report has no data line."""
    word = _STATUS_WORDS.get(status, "REC READ")
    if isinstance(message, pdu.StatusReport):
        return f'"{word}",{show_report(message, charset)}', None
    first, dcs = message.first_octet, message.dcs
    if first & 0x40 or pdu.alphabet_of(dcs) != pdu.GSM7:
        data = message.user_data.hex().upper()
        length = len(message.user_data)
    else:
        data = encode_string(message.text, charset) if charset == UCS2 else gsm_bytes(message.text)
        length = len(message.text)
    values = (
        f'"{word}","{encode_string(message.sender, charset)}",,'
        f'"{format_timestamp(message.timestamp)}",{INTERNATIONAL},{first},0,{dcs},'
        f'"{encode_string(smsc, charset)}",{INTERNATIONAL},{length}'
    )
    return values, data


def show_report(report: pdu.StatusReport, charset: str) -> str:
    """``<fo>,<mr>,<ra>,<tora>,<scts>,<dt>,<st>`` of a status report, as ``+CDS`` shows it."""
    return (
        f'6,{report.reference},"{encode_string(report.recipient, charset)}",{INTERNATIONAL},'
        f'"{format_timestamp(report.submitted_at)}","{format_timestamp(report.discharged_at)}",'
        f"{report.status}"
    )
