"""Text mode without I/O (what a modem shows and takes with AT+CMGF=1), and the simulated
modem's text-mode answers to bad input over its pseudo-terminal."""

from __future__ import annotations

import os
import select
import time
import tty

import pytest

from channels_sms import pdu, textmode
from channels_sms.at import AtStream, Result, Unsolicited
from channels_sms.testing import GsmModemSimulator

# +CMGR answers in the form of the SIM800 and Quectel AT manuals (AT+CSDH=1), in the GSM and
# the UCS2 character set: "Hello", and 你好 with UCS2 data coding; +32 quarters is UTC+8.
GSM_HEADER = (
    '+CMGR: "REC UNREAD","+8613918186089",,"02/01/30,20:40:31+32",145,4,0,0,"+8613800210500",145,5'
)
UCS2_HEADER = (
    '+CMGR: "REC READ","002B0038003600310033003900310038003100380036003000380039",,'
    '"02/01/30,20:40:31+32",145,4,0,8,"002B0038003600310033003800300030003200310030003500300030",145,4'
)


def test_a_gsm_character_set_message_is_read():
    message = textmode.read_message(GSM_HEADER, ["Hello"], textmode.GSM)
    assert (message.sender, message.text, message.timestamp) == (
        "+8613918186089",
        "Hello",
        "2002-01-30T20:40:31+08:00",
    )


def test_a_ucs2_message_is_read_from_hex():
    message = textmode.read_message(UCS2_HEADER, ["4F60597D"], textmode.UCS2)
    assert (message.sender, message.text, message.concatenation) == ("+8613918186089", "你好", None)


def test_a_status_report_is_read_from_cds_and_cmgr():
    line = '+CDS: 6,42,"+4915112345678",145,"24/05/06,07:08:09+00","24/05/06,07:08:19+00",0'
    report = textmode.read_report(line, textmode.GSM)
    assert (report.reference, report.recipient, report.outcome) == (
        42,
        "+4915112345678",
        "delivered",
    )
    assert report.discharged_at == "2024-05-06T07:08:19+00:00"
    stored = (
        '+CMGR: "REC UNREAD",6,42,"4915112345678",145,'
        '"24/05/06,07:08:09+00","24/05/06,07:08:19+00",70'
    )
    report = textmode.read_message(stored, [], textmode.GSM)
    assert (report.recipient, report.status, report.outcome) == ("+4915112345678", 70, "failed")


LONG_GSM = "Long text with {braces} and €. " * 12


@pytest.mark.parametrize("charset", textmode.CHARSETS)
@pytest.mark.parametrize(
    "text",
    [
        "Hello @ $ ¿",
        "Grüße 😀 Привет",
        LONG_GSM,
        "Ж" * 140,
        *("x" * length for length in range(307, 316)),
    ],
)
def test_texts_round_trip_through_cmgs_as_a_modem_reads_them(text, charset):
    parts = textmode.encode_submit("+4915112345678", text, 7, True, charset)
    submits = [
        textmode.read_submit(part.recipient, part.first_octet, part.dcs, part.body, charset)
        for part in parts
    ]
    assert "".join(message.text for message in submits) == text
    assert {message.recipient for message in submits} == {"+4915112345678"}
    if len(parts) > 1:
        assert {part.first_octet for part in parts} == {113}  # SMS-SUBMIT, VPF, SRR, UDHI
        assert [message.concatenation.sequence for message in submits] == list(
            range(1, len(parts) + 1)
        )
    assert all(part.dcs == (8 if "Ж" in text or "😀" in text else 0) for part in parts)


def test_a_long_received_message_shows_its_header_in_hex_and_is_joined():
    shown = [
        textmode.show_message(pdu.decode(hex_pdu), 0, textmode.UCS2, "+15550009999")
        for hex_pdu, _ in pdu.encode_deliver("+4915112345678", LONG_GSM, reference=9)
    ]
    messages = [textmode.read_message(f"+CMGR: {v}", [d], textmode.UCS2) for v, d in shown]
    assert all(data.startswith("050003") for _, data in shown)  # the concatenation header
    assert [m.concatenation for m in messages] == [
        pdu.Concatenation(9, len(messages), sequence) for sequence in range(1, len(messages) + 1)
    ]
    assert "".join(message.text for message in messages) == LONG_GSM


def test_quoted_values_keep_their_commas():
    assert textmode.fields('+X: "a,b",,3') == [
        textmode.Field("a,b", True),
        textmode.Field("", False),
        textmode.Field("3", False),
    ]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: textmode.read_message(UCS2_HEADER, ["4F6Z"], textmode.UCS2), "not hexadecimal"),
        (lambda: textmode.read_message('+CMGR: "REC UNREAD"', [], "GSM"), "names no message"),
        (
            lambda: textmode.read_message(GSM_HEADER.replace(",4,0,0,", ",x,0,0,"), [], "GSM"),
            "no number",
        ),
        (lambda: textmode.parse_timestamp("2024-05-06"), "yy/MM/dd,hh:mm:ss"),
        (lambda: textmode.parse_timestamp("24/13/06,07:08:09+00"), "is not a date"),
        (lambda: textmode.read_report("+CDS: 6,x", "GSM"), "cannot be read"),
        (
            lambda: textmode.encode_submit("+49151", "a\nb", 0, True, textmode.GSM),
            r"'\\n', which the GSM character set cannot carry",
        ),
        (lambda: textmode.encode_submit("+49 151", "hi", 0, True, "UCS2"), "not a phone number"),
    ],
)
def test_bad_input_is_a_clear_error(call, error):
    with pytest.raises(pdu.PduError, match=error):
        call()


def test_the_stream_takes_cds_alone_in_text_mode_and_skips_only_the_exact_echo():
    stream = AtStream(cds_pdu=False)
    stream.begin("AT+CMGR=1")
    events = stream.feed(b'AT+CMGR=1\r\r\n+CMGR: "REC READ"\r\nAt home\r\n\r\nOK\r\n+CDS: 6,1\r\n')
    assert events == [
        Result("AT+CMGR=1", ['+CMGR: "REC READ"', "At home"], "OK"),
        Unsolicited("+CDS: 6,1"),
    ]


def _converse(fd: int, command: str, expect: bytes) -> bytes:
    """Write *command* to the simulated modem and read until *expect* arrives (5 s at most)."""
    os.write(fd, command.encode("ascii"))
    received = b""
    deadline = time.monotonic() + 5
    while expect not in received:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {expect!r} after {command!r}: {received!r}"
        if select.select([fd], [], [], remaining)[0]:
            received += os.read(fd, 4096)
    return received


def test_the_simulator_answers_bad_text_mode_parameters_with_305_and_pdu_ones_with_304(tmp_path):
    with GsmModemSimulator(tmp_path / "modem") as modem:
        fd = os.open(modem.link, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            for command in ("ATE0\r", "AT+CMGF=1\r", 'AT+CSCS="UCS2"\r'):
                _converse(fd, command, b"OK\r\n")
            assert b"+CMS ERROR: 305" in _converse(fd, 'AT+CMGS="+1"\r', b"ERROR")  # not hex
            _converse(fd, 'AT+CMGS="002B0031"\r', b"> ")
            # dcs 0 in the UCS2 character set: the text must be hex.
            assert b"+CMS ERROR: 305" in _converse(fd, "Hi\x1a", b"ERROR")
            _converse(fd, 'AT+CMGS="002B0031"\r', b"> ")
            assert b"+CMGS: 1" in _converse(fd, "00480069\x1a", b"OK\r\n")
            _converse(fd, "AT+CMGF=0\r", b"OK\r\n")
            assert b"+CMS ERROR: 304" in _converse(fd, 'AT+CMGS="002B0031"\r', b"ERROR")
        finally:
            os.close(fd)
        assert modem.sent_texts() == [("+1", "Hi")]
