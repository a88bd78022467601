"""The UDP protocol's logic without I/O, driven by made-up clocks."""

from __future__ import annotations

import pytest

from channels_udp.limits import Occurrences, TokenBucket, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("::1:53", ("::1", 53)),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text", ["9000", "localhost:9000", "127.0.0.1", "127.0.0.1:x", "[::1]", ":9000", ""]
)
def test_parse_address_refuses_what_is_not_ip_and_port(text):
    with pytest.raises(ValueError, match="is not a UDP address: write HOST:PORT"):
        parse_address(text)


def test_parse_address_refuses_a_port_out_of_range():
    with pytest.raises(ValueError, match="has the port 65536: use a port between 0 and 65535"):
        parse_address("127.0.0.1:65536")


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=10, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    # A quarter of a second refills 2.5 tokens; the bucket never holds more than the burst.
    assert [bucket.take(100.25) for _ in range(3)] == [True, True, False]
    assert [bucket.take(200.0) for _ in range(4)] == [True, True, True, False]


def test_token_bucket_counts_fractions_of_tokens():
    bucket = TokenBucket(rate=2, burst=1, now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.25)
    assert bucket.take(0.5)


def test_occurrences_report_at_once_then_once_per_interval_with_the_count():
    seen = Occurrences(interval=10)
    assert seen.add(0.0) == 1
    assert [seen.add(now) for now in (1.0, 2.0, 9.9)] == [0, 0, 0]
    assert seen.add(10.0) == 4
    assert seen.add(11.0) == 0
    assert seen.add(30.0) == 2
    assert seen.total == 7
