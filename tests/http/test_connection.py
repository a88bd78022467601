"""The sans-I/O HTTP/1.1 connection, fed bytes directly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels_core.headers import InvalidHeader
from channels_http.connection import (
    CONTINUE,
    HttpConnection,
    ProtocolError,
    Request,
    ResponseError,
)


def requests_of(connection: HttpConnection) -> list:
    """Answer every queued request with an empty 200 and return them."""
    found = []
    while (event := connection.next_request()) is not None:
        found.append(event)
        if isinstance(event, Request):
            connection.start_response(200, [])
    return found


def test_keep_alive_and_pipelining_answer_in_order():
    connection = HttpConnection()
    connection.receive(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?q=1 HTTP/1.1\r\n\r\nGET /c")
    first = connection.next_request()
    assert first.target == b"/a"
    assert first.headers == [[b"host", b"x"]]
    # The second waits until the first is answered.
    assert connection.next_request() is None
    assert connection.backlog == 1
    assert connection.start_response(200, [("X-A", "1")], b"ok") == (
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\ncontent-length: 2\r\n\r\nok"
    )
    assert connection.keep_alive
    assert connection.next_request().target == b"/b?q=1"
    assert connection.receiving
    connection.receive(b" HTTP/1.1\r\n\r\n")
    connection.start_response(204, [])
    assert connection.next_request().target == b"/c"


def test_http_10_closes_and_streams_close_delimited():
    connection = HttpConnection()
    connection.receive(b"GET / HTTP/1.0\r\n\r\n")
    connection.next_request()
    assert connection.start_response(200, [], b"a", more=True) == (
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\na"
    )
    assert connection.send_body(b"b") == b"b"
    assert not connection.keep_alive


def test_chunked_both_ways():
    connection = HttpConnection()
    connection.receive(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    request = connection.next_request()
    assert request.body == b"abcde"
    assert connection.start_response(200, [], b"xy", more=True) == (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nxy\r\n"
    )
    assert connection.send_body(b"", more=True) == b""
    assert connection.send_body(b"z") == b"1\r\nz\r\n0\r\n\r\n"
    assert connection.keep_alive


def test_head_responses_carry_no_body():
    connection = HttpConnection()
    connection.receive(b"HEAD / HTTP/1.1\r\n\r\n")
    connection.next_request()
    assert connection.start_response(200, [], b"hidden") == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n"
    )


def test_expect_100_continue_is_answered_before_the_body():
    connection = HttpConnection(max_body_size=10)
    head = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    assert connection.receive(head) == CONTINUE
    assert connection.next_request() is None
    assert connection.receive(b"hello") == b""
    assert connection.next_request().body == b"hello"


def test_expect_100_continue_waits_for_the_previous_response():
    connection = HttpConnection()
    connection.receive(b"GET / HTTP/1.1\r\n\r\n")
    connection.next_request()
    head = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"
    assert connection.receive(head) == b""
    assert connection.start_response(200, []).endswith(b"\r\n\r\n" + CONTINUE)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"POST / HTTP/1.1\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\n", 417),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\nhello world\r\n", 413),
        (b"GET / HTTP/1.1\r\nX: " + b"y" * 300, 431),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 60 + b"\r\n", 431),
        (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 431),
        (b"NOT HTTP\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    ],
)
def test_refused_requests_become_errors_and_close(data, status):
    connection = HttpConnection(max_header_size=256, max_body_size=10)
    assert connection.receive(data) == b""
    error = connection.next_request()
    assert isinstance(error, ProtocolError)
    assert error.status == status
    assert connection.closed
    response = connection.error_response(error)
    assert response.startswith(b"HTTP/1.1 %d " % status)
    assert b"connection: close\r\n" in response
    assert connection.receive(b"GET / HTTP/1.1\r\n\r\n") == b""
    assert connection.next_request() is None


def test_an_error_after_a_good_request_comes_after_its_response():
    connection = HttpConnection()
    connection.receive(b"GET / HTTP/1.1\r\n\r\nBROKEN\r\n\r\n")
    assert isinstance(connection.next_request(), Request)
    connection.start_response(200, [])
    assert connection.next_request().status == 400


def test_a_slow_request_times_out_with_408():
    connection = HttpConnection()
    connection.receive(b"GET / HT")
    connection.timed_out()
    assert connection.next_request().status == 408


def test_upgrade_stops_parsing_and_keeps_the_leftover():
    connection = HttpConnection()
    connection.receive(
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"
    )
    request = connection.next_request()
    assert request.upgrade == b"\x81\x05hello"
    assert not request.keep_alive
    assert connection.closed


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [
                    b"GET / HTTP/1.1\r\n",
                    b"POST /x HTTP/1.1\r\n",
                    b"Content-Length: 3\r\n",
                    b"Transfer-Encoding: chunked\r\n",
                    b"Expect: 100-continue\r\n",
                    b"Connection: upgrade\r\nUpgrade: x\r\n",
                    b"\r\n",
                    b"3\r\nabc\r\n0\r\n\r\n",
                    b"abc",
                ]
            ),
        ),
        max_size=20,
    )
)
def test_fuzz_never_raises_and_stays_consistent(pieces):
    connection = HttpConnection(max_header_size=128, max_body_size=16)
    events = []
    for piece in pieces:
        output = connection.receive(piece)
        assert output in (b"", CONTINUE)
        events.extend(requests_of(connection))
    errors = [index for index, event in enumerate(events) if isinstance(event, ProtocolError)]
    # At most one error, and nothing after it; the connection is then closed.
    assert len(errors) <= 1
    if errors:
        assert errors[0] == len(events) - 1
        assert connection.closed
    for event in events:
        if isinstance(event, Request):
            assert len(event.body) <= 16
            assert all(name == name.lower() for name, _ in event.headers)
    assert connection.current is None


def answering(request: bytes = b"GET / HTTP/1.1\r\n\r\n") -> HttpConnection:
    """A connection answering one request."""
    connection = HttpConnection()
    connection.receive(request)
    assert isinstance(connection.next_request(), Request)
    return connection


@pytest.mark.parametrize(
    "header", [(b"X-Test", b"a\r\nX-Injected: 1"), (b"X-Test", b"a\x00"), (b"X:Test", b"1")]
)
def test_a_header_that_must_not_be_written_raises_before_any_byte(header):
    with pytest.raises(InvalidHeader, match=r"the response header '.*' has"):
        answering().start_response(200, [(b"X-Fine", b"1"), header], b"ok")


@pytest.mark.parametrize(
    ("headers", "parts", "message"),
    [
        ([(b"Content-Length", b"abc")], [b"ok"], "sets Content-Length to b'abc'"),
        (
            [(b"Content-Length", b"2"), (b"content-length", b"2")],
            [b"ok"],
            "sets Content-Length to b'2' after another one",
        ),
        ([(b"Content-Length", b"5")], [b"0123456"], "set Content-Length 5 but its body went past"),
        ([(b"Content-Length", b"5")], [b"012"], "set Content-Length 5 but its body ended after 3"),
    ],
)
def test_a_content_length_the_body_disagrees_with_raises_before_any_byte(headers, parts, message):
    with pytest.raises(ResponseError, match=message):
        answering().start_response(200, headers, parts[0])


def test_a_streamed_body_is_held_to_its_content_length():
    connection = answering()
    head = connection.start_response(200, [(b"Content-Length", b"5")], b"012", more=True)
    assert head.endswith(b"\r\n\r\n012")
    with pytest.raises(ResponseError, match="went past it"):
        connection.send_body(b"345", more=True)
    connection = answering()
    connection.start_response(200, [(b"Content-Length", b"5")], b"012", more=True)
    with pytest.raises(ResponseError, match="ended after 3 bytes"):
        connection.send_body(b"")
    connection = answering()
    connection.start_response(200, [(b"Content-Length", b"5")], b"012", more=True)
    assert connection.send_body(b"34") == b"34"
    assert connection.keep_alive


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [(b"HEAD / HTTP/1.1\r\n\r\n", 200), (b"GET / HTTP/1.1\r\n\r\n", 304)],
)
def test_a_content_length_without_a_body_is_kept_for_head_and_304(request_bytes, status):
    connection = answering(request_bytes)
    response = connection.start_response(status, [(b"Content-Length", b"1234")], b"", more=True)
    assert response.endswith(b"\r\nContent-Length: 1234\r\n\r\n")
    assert connection.send_body(b"ignored") == b""
    assert connection.keep_alive
