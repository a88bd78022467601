"""The opening handshake, without I/O: validation, origins, subprotocols, deflate offers."""

from __future__ import annotations

import pytest

from channels_core.headers import InvalidHeader
from channels_ws.handshake import (
    HandshakeError,
    accept_key,
    check_request,
    negotiate_deflate,
    origin_allowed,
    reject,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def headers(**extra: bytes) -> list[list[bytes]]:
    base = {
        "upgrade": b"websocket",
        "connection": b"keep-alive, Upgrade",
        "sec-websocket-version": b"13",
        "sec-websocket-key": KEY,
    }
    base.update({name.replace("_", "-"): value for name, value in extra.items()})
    return [[name.encode(), value] for name, value in base.items() if value is not None]


def test_accept_key_is_the_rfc_example():
    assert accept_key(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_valid_request_gives_the_101_response():
    handshake = check_request("GET", headers(), None)
    response, deflate = handshake.accept()
    assert response == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert deflate is None


@pytest.mark.parametrize(
    ("method", "extra", "status"),
    [
        ("POST", {}, 405),
        ("GET", {"upgrade": b"h2c"}, 400),
        ("GET", {"connection": b"keep-alive"}, 400),
        ("GET", {"sec_websocket_version": b"8"}, 426),
        ("GET", {"sec_websocket_key": None}, 400),
        ("GET", {"sec_websocket_key": b"c2hvcnQ="}, 400),
        ("GET", {"sec_websocket_key": b"not base64!!"}, 400),
    ],
)
def test_invalid_requests_are_refused_with_their_status(method, extra, status):
    with pytest.raises(HandshakeError) as refused:
        check_request(method, headers(**extra), None)
    assert refused.value.status == status


def test_refusal_bytes_name_the_status_and_close():
    response = reject(426, "Sec-WebSocket-Version is not 13")
    assert response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"Sec-WebSocket-Version: 13\r\n" in response
    assert b"Connection: close\r\n" in response
    assert response.endswith(b"\r\n\r\n426 Upgrade Required: Sec-WebSocket-Version is not 13\n")


@pytest.mark.parametrize(
    ("origin", "hosts", "allowed"),
    [
        (b"https://example.com", ["example.com"], True),
        (b"https://example.com:8443", ["example.com"], True),
        (b"https://chat.example.com", [".example.com"], True),
        (b"https://example.org", ["example.com"], False),
        (b"https://anything", ["*"], True),
        (b"null", ["example.com"], False),
        (b"http://[bad", ["*"], False),
    ],
)
def test_origin_matching_follows_allowed_hosts(origin, hosts, allowed):
    assert origin_allowed(origin, hosts) is allowed


def test_forbidden_origin_is_403_and_no_origin_is_not_checked():
    with pytest.raises(HandshakeError) as refused:
        check_request("GET", headers(origin=b"https://evil.example"), ["good.example"])
    assert refused.value.status == 403
    assert "evil.example" in refused.value.reason
    check_request("GET", headers(), ["good.example"])


def test_subprotocol_must_be_one_the_client_offered():
    handshake = check_request("GET", headers(sec_websocket_protocol=b"chat, superchat"), None)
    assert handshake.subprotocols == ("chat", "superchat")
    response, _ = handshake.accept("superchat")
    assert b"Sec-WebSocket-Protocol: superchat\r\n" in response
    with pytest.raises(ValueError, match="'other', which the client did not offer"):
        handshake.accept("other")


@pytest.mark.parametrize(
    ("offer", "response"),
    [
        (b"permessage-deflate", b"permessage-deflate"),
        (b"permessage-deflate; client_max_window_bits", b"permessage-deflate"),
        (
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            b"permessage-deflate; server_max_window_bits=10",
            b"permessage-deflate; server_max_window_bits=10",
        ),
        # The first offer is unacceptable (unknown parameter), the second is taken.
        (b"permessage-deflate; foo=1, permessage-deflate", b"permessage-deflate"),
        (b"permessage-deflate; server_max_window_bits=8", None),
        (b"permessage-deflate; server_max_window_bits=16", None),
        (b"permessage-deflate; server_max_window_bits", None),
        (b"permessage-deflate; client_max_window_bits=x", None),
        (b"permessage-deflate; server_no_context_takeover=1", None),
        (b"permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        (b"x-webkit-deflate-frame", None),
    ],
)
def test_deflate_negotiation(offer, response):
    negotiated = negotiate_deflate([part.strip() for part in offer.split(b",")])
    if response is None:
        assert negotiated is None
    else:
        assert negotiated[0] == response


def test_negotiated_parameters_shape_the_deflate_state():
    offer = b"permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
    handshake = check_request("GET", headers(sec_websocket_extensions=offer), None)
    response, deflate = handshake.accept()
    assert b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; " in response
    assert deflate.local_no_context_takeover
    assert not deflate.remote_no_context_takeover
    assert deflate.local_max_window_bits == 9
    _, without = handshake.accept(compression=False)
    assert without is None


def test_accept_adds_the_consumer_headers_but_not_the_handshake_ones():
    handshake = check_request("GET", headers(), None)
    response, _ = handshake.accept(
        headers=[(b"Set-Cookie", b"a=b"), ("x-note", "caf\xe9"), (b"Upgrade", b"h2c")]
    )
    assert response.endswith(b"\r\nSet-Cookie: a=b\r\nx-note: caf\xe9\r\n\r\n")
    assert response.count(b"Upgrade:") == 1


@pytest.mark.parametrize(
    "header", [(b"X-Test", b"a\r\nX-Injected: 1"), (b"X Test", b"1"), (b"", b"1")]
)
def test_accept_refuses_a_header_that_must_not_be_written(header):
    handshake = check_request("GET", headers(), None)
    with pytest.raises(InvalidHeader, match=r"the response header '.*' has"):
        handshake.accept(headers=[header])
