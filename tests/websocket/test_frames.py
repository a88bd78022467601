"""The RFC 6455 codec, fed bytes: framing rules, close codes, UTF-8, sizes, permessage-deflate."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels_ws.frames import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    BinaryMessage,
    Close,
    Deflate,
    FrameCodec,
    Ping,
    Pong,
    ProtocolError,
    TextMessage,
    apply_mask,
)


def client() -> FrameCodec:
    return FrameCodec(client=True)


def server(**kwargs) -> FrameCodec:
    return FrameCodec(**kwargs)


def raw(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    """A hand-made frame: any header bits, masked like a client's unless told otherwise."""
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    bit = 0x80 if masked else 0
    if length < 126:
        header = bytes((first, bit | length))
    elif length < 65536:
        header = struct.pack("!BBH", first, bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, bit | 127, length)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + apply_mask(payload, mask)


def error_code(codec: FrameCodec, data: bytes) -> int:
    with pytest.raises(ProtocolError) as caught:
        codec.receive(data)
    return caught.value.code


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 200_000])
def test_text_and_binary_round_trip_at_every_length_encoding(size):
    text = "é" * (size // 2)
    data = os.urandom(size)
    assert server().receive(client().text(text) + client().binary(data)) == [
        TextMessage(text),
        BinaryMessage(data),
    ]


def test_frames_split_at_every_byte_still_parse():
    wire = client().text("hello world") + client().ping(b"p") + client().binary(b"\x00\xff")
    codec = server()
    events = []
    for index in range(len(wire)):
        events.extend(codec.receive(wire[index : index + 1]))
    assert events == [TextMessage("hello world"), Ping(b"p"), BinaryMessage(b"\x00\xff")]


def test_fragmented_message_with_a_control_frame_in_between():
    codec = server()
    wire = (
        raw(TEXT, b"hel", fin=False)
        + raw(PING, b"x")
        + raw(CONTINUATION, b"lo ", fin=False)
        + raw(CONTINUATION, "wörld".encode())
    )
    assert codec.receive(wire) == [Ping(b"x"), TextMessage("hello wörld")]


def test_utf8_is_validated_across_fragments_and_fails_early():
    snowman = "☃".encode()
    codec = server()
    # A character split between fragments is fine.
    assert codec.receive(raw(TEXT, snowman[:1], fin=False)) == []
    assert codec.receive(raw(CONTINUATION, snowman[1:])) == [TextMessage("☃")]
    # An invalid byte fails on its fragment, before the message ends.
    assert error_code(server(), raw(TEXT, b"ok\xff", fin=False)) == 1007
    assert error_code(server(), raw(TEXT, b"\xc3")) == 1007


def test_server_side_refuses_unmasked_client_frames_and_client_side_masked_ones():
    assert error_code(server(), raw(TEXT, b"hi", masked=False)) == 1002
    assert error_code(client(), raw(TEXT, b"hi", masked=True)) == 1002
    assert client().receive(server().text("hi")) == [TextMessage("hi")]


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (raw(TEXT, b"x", rsv=0x40), "reserved bits"),
        (raw(TEXT, b"x", rsv=0x20), "reserved bits"),
        (raw(PING, b"x", rsv=0x10), "reserved bits"),
        (raw(0x3, b"x"), "unknown opcode"),
        (raw(0xB, b"x"), "reserved bits|unknown opcode"),
        (raw(PING, b"x" * 126), "over 125"),
        (raw(PING, b"x", fin=False), "fragmented control"),
        (raw(CONTINUATION, b"x"), "without a message"),
        (raw(TEXT, b"a", fin=False) + raw(TEXT, b"b"), "before the last one ended"),
        (raw(CLOSE, b"\x03"), "one-byte"),
        (raw(CLOSE, struct.pack("!H", 1005)), "invalid close code"),
        (raw(CLOSE, struct.pack("!H", 999)), "invalid close code"),
        (raw(CLOSE, struct.pack("!H", 5000)), "invalid close code"),
    ],
)
def test_invalid_frames_are_protocol_errors(wire, reason):
    with pytest.raises(ProtocolError, match=reason) as caught:
        server().receive(wire)
    assert caught.value.code == 1002


def test_close_frames_report_their_code():
    assert server().receive(raw(CLOSE, b"")) == [Close(1005)]
    assert server().receive(raw(CLOSE, struct.pack("!H", 4001) + b"bye")) == [Close(4001)]


def test_close_reason_must_be_utf8():
    assert error_code(server(), raw(CLOSE, struct.pack("!H", 1000) + b"\xff")) == 1007


def test_nothing_after_a_close_frame_is_parsed():
    wire = raw(CLOSE, struct.pack("!H", 1000)) + b"\xff\xff garbage"
    assert server().receive(wire) == [Close(1000)]


def test_sending_an_invalid_close_code_is_a_clear_error():
    with pytest.raises(ValueError, match="close code 1006 may not be sent"):
        server().close(1006)
    assert server().close(1005) == b"\x88\x00"


def test_message_and_frame_size_limits_are_1009_before_the_payload_arrives():
    codec = server(max_message_size=100, max_frame_size=60)
    # The header alone proves the frame too big: no payload needed.
    assert error_code(codec, raw(BINARY, b"x" * 61)[:8]) == 1009
    codec = server(max_message_size=100, max_frame_size=60)
    assert codec.receive(raw(BINARY, b"x" * 60, fin=False)) == []
    assert error_code(codec, raw(CONTINUATION, b"x" * 41)) == 1009
    assert server(max_message_size=100).receive(raw(BINARY, b"x" * 100)) == [
        BinaryMessage(b"x" * 100)
    ]


def test_control_frames_serialize():
    assert client().receive(server().ping(b"a") + server().pong(b"b") + server().close(1001)) == [
        Ping(b"a"),
        Pong(b"b"),
        Close(1001),
    ]


@pytest.mark.parametrize(
    "deflate_args",
    [{}, {"local_no_context_takeover": True, "remote_no_context_takeover": True}],
)
def test_permessage_deflate_round_trips_over_several_messages(deflate_args):
    sender = FrameCodec(deflate=Deflate(**deflate_args), client=True)
    receiver = FrameCodec(deflate=Deflate(**deflate_args))
    messages = ["hello " * 50, "hello " * 50, "x", ""]
    wire = b"".join(sender.text(message) for message in messages)
    assert wire[0] & 0x40  # compressed frames carry RSV1
    assert receiver.receive(wire) == [TextMessage(message) for message in messages]
    assert len(sender.text("a" * 10_000)) < 200


def test_compressed_message_split_into_fragments():
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(b"fragmented " * 20) + compressor.flush(zlib.Z_SYNC_FLUSH)
    body = body[:-4]
    wire = raw(BINARY, body[:5], fin=False, rsv=0x40) + raw(CONTINUATION, body[5:])
    assert FrameCodec(deflate=Deflate()).receive(wire) == [BinaryMessage(b"fragmented " * 20)]


def test_zip_bomb_is_1009_without_inflating_it_all():
    bomb = Deflate(local_no_context_takeover=True).compress(b"\x00" * 50_000_000)
    assert len(bomb) < 100_000
    codec = FrameCodec(max_message_size=1 << 20, deflate=Deflate())
    assert error_code(codec, raw(BINARY, bomb, rsv=0x40)) == 1009


def test_corrupt_compressed_data_is_a_protocol_error():
    codec = FrameCodec(deflate=Deflate())
    assert error_code(codec, raw(BINARY, b"\xff\xff\xff\xff", rsv=0x40)) == 1002


def test_invalid_utf8_inside_compressed_text_is_1007():
    data = Deflate().compress(b"\xff\xfe")
    assert error_code(FrameCodec(deflate=Deflate()), raw(TEXT, data, rsv=0x40)) == 1007


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_only_ever_raise_protocol_errors(data, deflate):
    codec = FrameCodec(
        max_message_size=4096, max_frame_size=1024, deflate=Deflate() if deflate else None
    )
    code = None
    try:
        for chunk in (data[: len(data) // 2], data[len(data) // 2 :]):
            codec.receive(chunk)
    except ProtocolError as error:
        code = error.code
    assert code in (None, 1002, 1007, 1009)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG, 0x3, 0xB]),
            st.binary(max_size=140),
            st.booleans(),
            st.sampled_from([0, 0x40, 0x20]),
        ),
        max_size=6,
    ),
    st.integers(min_value=0, max_value=2000),
    st.integers(min_value=0, max_value=255),
)
def test_mutated_frames_only_ever_raise_protocol_errors(frames, flip_at, flip):
    wire = bytearray(b"".join(raw(op, payload, fin, rsv) for op, payload, fin, rsv in frames))
    if wire:
        wire[flip_at % len(wire)] ^= flip
    codec = FrameCodec(max_message_size=4096, max_frame_size=1024, deflate=Deflate())
    code, events = None, []
    try:
        events = codec.receive(bytes(wire))
    except ProtocolError as error:
        code = error.code
    assert code in (None, 1002, 1007, 1009)
    assert all(type(event) in (TextMessage, BinaryMessage, Ping, Pong, Close) for event in events)
