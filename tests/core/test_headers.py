"""channels_core.headers.checked_header: the one check of application-given response headers
that HTTP/1.1, HTTP/2 and the WebSocket handshake share."""

from __future__ import annotations

import pytest

from channels_core.headers import (
    InvalidHeader,
    ResponseError,
    checked_header,
    counted_body,
    declared_length,
)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (b"Content-Type", b"text/plain", (b"Content-Type", b"text/plain")),
        (
            "x-odd_name.1~!#$%&'*+^`|",
            "tab\tand space",
            (b"x-odd_name.1~!#$%&'*+^`|", b"tab\tand space"),
        ),
        ("X-Latin", "caf\xe9", (b"X-Latin", b"caf\xe9")),
        (b"X-Empty", b"", (b"X-Empty", b"")),
    ],
)
def test_valid_headers_come_back_as_bytes(name, value, expected):
    assert checked_header(name, value) == expected
    # A second time, the name is known: the same answer.
    assert checked_header(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (b"X-Test", b"a\r\nX-Injected: 1", "has a value holding CR, LF or NUL"),
        (b"X-Test", b"a\nb", "has a value holding CR, LF or NUL"),
        (b"X-Test", b"a\rb", "has a value holding CR, LF or NUL"),
        (b"X-Test", b"a\x00b", "has a value holding CR, LF or NUL"),
        (b"X Test", b"1", "has a name that is not an HTTP token"),
        (b"X-Test:", b"1", "has a name that is not an HTTP token"),
        (b"", b"1", "has a name that is not an HTTP token"),
        (b"X-Test\r\nX-Injected", b"1", "has a name that is not an HTTP token"),
        ("X-\u2603", b"1", "has a name Latin-1 cannot encode"),
        (b"X-Test", "\u2603", "has a value Latin-1 cannot encode"),
        (b"X-Test", 5, "has a value of type int; give bytes or str"),
        (None, b"1", "has a name of type NoneType; give bytes or str"),
    ],
)
def test_invalid_headers_raise_a_sentence_naming_the_header(name, value, problem):
    with pytest.raises(InvalidHeader) as error:
        checked_header(name, value)
    shown = name.decode("latin-1") if isinstance(name, bytes) else name
    assert str(error.value).startswith(f"the response header {shown!r} {problem}")
    assert error.value.name == name
    assert isinstance(error.value, ValueError)


def test_a_name_seen_valid_does_not_let_a_bad_value_through():
    checked_header(b"X-Seen", b"fine")
    with pytest.raises(InvalidHeader):
        checked_header(b"X-Seen", b"bad\r\nX-Injected: 1")


@pytest.mark.parametrize(
    ("value", "previous", "message"),
    [
        (b"5x", None, r"sets Content-Length to b'5x'; set it once"),
        (b"-1", None, r"sets Content-Length to b'-1'"),
        (b"", None, r"sets Content-Length to b''"),
        (b"5", 5, r"sets Content-Length to b'5' after another one"),
    ],
)
def test_a_content_length_that_is_not_one_number_is_a_response_error(value, previous, message):
    with pytest.raises(ResponseError, match=message):
        declared_length(value, previous)


def test_a_content_length_is_read_once():
    assert declared_length(b"0", None) == 0
    assert declared_length(b"1048576", None) == 1048576


def test_a_body_is_counted_against_its_content_length():
    sent = counted_body(5, 0, 3, more=True)
    assert counted_body(5, sent, 2, more=False) == 5
    with pytest.raises(ResponseError, match="set Content-Length 5 but its body went past it"):
        counted_body(5, sent, 3, more=True)
    with pytest.raises(ResponseError, match="but its body ended after 4 bytes"):
        counted_body(5, sent, 1, more=False)
    # Short so far is fine while more parts follow.
    assert counted_body(5, 0, 0, more=True) == 0
