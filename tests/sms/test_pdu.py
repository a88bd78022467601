"""The PDU codec and the AT stream, without I/O: published PDUs, round trips, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels_sms import pdu
from channels_sms.at import AtStream, Garbage, Prompt, Result, Unsolicited, describe_error

# The SMS-DELIVER and SMS-SUBMIT examples of the GSM 03.40 tutorials every modem guide quotes.
DELIVER_EXAMPLE = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
SUBMIT_EXAMPLE = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"


def test_the_alphabet_has_128_positions():
    assert len(pdu.GSM7_ALPHABET) == 128


def test_a_published_deliver_pdu_is_read():
    message = pdu.decode(DELIVER_EXAMPLE)
    assert isinstance(message, pdu.Deliver)
    assert message.sender == "27838890001"
    assert message.text == "hellohello"
    assert message.timestamp == "1999-03-29T15:16:59+02:00"
    assert message.concatenation is None


def test_a_published_submit_pdu_is_read_and_written_alike():
    message = pdu.decode(SUBMIT_EXAMPLE)
    assert (message.recipient, message.text, message.status_report) == (
        "+46708251358",
        "hellohello",
        False,
    )
    [(hex_pdu, length)] = pdu.encode_submit("+46708251358", "hellohello", status_report=False)
    assert hex_pdu == SUBMIT_EXAMPLE
    assert length == len(SUBMIT_EXAMPLE) // 2 - 1


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", 1),
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("€" * 80, 1),  # 160 septets: each € is an escape and a code
        ("€" * 81, 2),
        ("ü" * 70 + "Ж", 2),  # UCS2: 71 units
        ("Ж" * 70, 1),
        ("😀" * 35, 1),  # 70 UTF-16 units
        ("😀" * 40, 2),
        ("[" + "a" * 152 + "]" * 5, 2),
    ],
)
def test_texts_round_trip_through_submit_and_deliver(text, parts):
    submits = [pdu.decode(hex_pdu) for hex_pdu, _ in pdu.encode_submit("+4915112345678", text, 7)]
    assert len(submits) == parts
    assert "".join(message.text for message in submits) == text
    if parts > 1:
        assert [m.concatenation for m in submits] == [
            pdu.Concatenation(7, parts, sequence) for sequence in range(1, parts + 1)
        ]
    moment = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    delivers = [
        pdu.decode(hex_pdu) for hex_pdu, _ in pdu.encode_deliver("+441234", text, moment, 9)
    ]
    assert "".join(message.text for message in delivers) == text
    assert {message.timestamp for message in delivers} == {"2024-05-06T07:08:09+00:00"}


def test_a_status_report_round_trips():
    hex_pdu, length = pdu.encode_status_report(42, "+4915112345678", status=0x45)
    report = pdu.decode(hex_pdu)
    assert (report.reference, report.recipient, report.status, report.outcome) == (
        42,
        "+4915112345678",
        0x45,
        "failed",
    )
    assert length == len(hex_pdu) // 2 - 8  # SMSC: length octet, type, 6 digit octets


def test_a_lone_surrogate_is_a_clear_error():
    with pytest.raises(pdu.PduError, match=r"position 3, a lone UTF-16 surrogate"):
        pdu.encode_submit("+49151", "abc\ud800def")


@pytest.mark.parametrize("number", ["", "+", "12ab", "+1 555", "0" * 21, None, 12345])
def test_a_bad_number_is_a_clear_error(number):
    with pytest.raises(pdu.PduError, match="is not a phone number"):
        pdu.encode_submit(number, "hi")


def test_a_text_over_255_parts_is_refused():
    with pytest.raises(pdu.PduError, match="at most 255"):
        pdu.encode_submit("+49151", "x" * 153 * 256)


@pytest.mark.parametrize("bad", ["zz", "00", DELIVER_EXAMPLE[:30], "0007"])
def test_bad_pdus_are_clear_errors(bad):
    with pytest.raises(pdu.PduError):
        pdu.decode(bad)


def test_the_stream_sorts_answers_prompts_notifications_and_garbage():
    stream = AtStream()
    assert stream.feed(b"\r\nRING\r\n") == [Garbage("RING")]
    stream.begin("AT+CMGR=3")
    events = stream.feed(b'AT+CMGR=3\r\r\n+CMGR: 0,,23\r\n+CMTI: "SM",4\r\n0791')
    assert events == [Unsolicited('+CMTI: "SM",4')]
    assert stream.feed(b"AB\r\n\r\nOK\r\n") == [
        Result("AT+CMGR=3", ["+CMGR: 0,,23", "0791AB"], "OK")
    ]
    stream.begin("AT+CMGS=5", expects_prompt=True)
    assert stream.feed(b"\r\n> ") == [Prompt()]
    assert stream.feed(b"\r\n+CDS: 25\r\n07AB\r\n\r\n+CMGS: 9\r\n\r\n+CMS ERROR: 330\r\n") == [
        Unsolicited("+CDS: 25", "07AB"),
        Result("AT+CMGS=5", ["+CMGS: 9"], "+CMS ERROR: 330"),
    ]
    assert stream.feed(b"x" * 2000) == [Garbage("x" * 2000)]


@pytest.mark.parametrize(
    ("final", "meaning"),
    [
        ("+CMS ERROR: 330", "SMSC address unknown"),
        ("+CME ERROR: 10", "SIM not inserted"),
        ("+CMS ERROR: 9999", "does not know"),
        ("ERROR", "without saying why"),
    ],
)
def test_errors_are_explained(final, meaning):
    assert meaning in describe_error(final)
