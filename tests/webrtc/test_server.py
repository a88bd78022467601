"""channels-webrtc served by real ``channels serve`` processes, with aiortc client peers.

Everything stays on loopback: the project's settings give the server ``ice_servers=[]`` and
``host_addresses=["127.0.0.1"]``, the client peers come from
:class:`channels_webrtc.testing.LoopbackClient` and gather on 127.0.0.1 only, and every SDP, offer
and answer, is checked for any other address before it is used.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal

import pytest

from channels_webrtc.testing import LoopbackClient, post_json, post_offer
from channels_ws.testing import WebSocketClient

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def server(webrtc_project):
    """One server for the module."""
    with webrtc_project.serve() as process:
        yield process


async def wait_for_text(client: LoopbackClient, label: str, text: str) -> None:
    """Read *label* until *text* arrives (other announcements are skipped)."""
    while (await client.receive(label)) != text:
        pass


async def test_http_signalling_echoes_text_and_bytes_on_several_channels(server):
    client = LoopbackClient("chat", "binary", "third")
    try:
        await client.connect_over_http(server.offer_url)
        replies = await asyncio.gather(
            client.exchange("chat", "hello"),
            client.exchange("binary", b"\x00\x01\xff" * 100),
            client.exchange("third", "ünïcode " * 500),
        )
        assert replies == ["hello", b"\x00\x01\xff" * 100, "ünïcode " * 500]
        for index in range(20):
            client.channels["chat"].send(str(index))
        assert [await client.receive("chat") for _ in range(20)] == [str(i) for i in range(20)]
    finally:
        await client.close()


async def test_websocket_signalling_answers_offers_and_errors(server):
    ws = await asyncio.to_thread(WebSocketClient.connect, server.port, "/webrtc/ws")
    first, second = LoopbackClient("one"), LoopbackClient("two")
    try:
        for client in (first, second):
            await asyncio.to_thread(ws.send_text, json.dumps(await client.offer()))
            answer = json.loads(await asyncio.to_thread(ws.receive))
            assert set(answer) == {"type", "sdp", "peer"}
            await client.connect(answer)
        assert first.answer["peer"] != second.answer["peer"]
        assert await first.exchange("one", "over ws") == "over ws"
        assert await second.exchange("two", b"bytes") == b"bytes"
        await asyncio.to_thread(ws.send_text, "not json")
        error = json.loads(await asyncio.to_thread(ws.receive))
        assert error["type"] == "error"
        assert "is not JSON" in error["error"]
        await asyncio.to_thread(ws.send_bytes, b"{}")
        error = json.loads(await asyncio.to_thread(ws.receive))
        assert "as a text message" in error["error"]
        # The peers live on after the signalling WebSocket closes.
        await asyncio.to_thread(ws.close)
        assert await first.exchange("one", "still here") == "still here"
    finally:
        ws.sock.close()
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("v=0 not json", "is not JSON"),
        ('["offer"]', "is a JSON list"),
        ('{"type": "answer", "sdp": "v=0"}', "has type 'answer'"),
        ('{"type": "offer", "sdp": 42}', "is not an SDP session description"),
        ('{"type": "offer", "sdp": "v=0\\r\\nm=audio 9 RTP/AVP 0\\r\\n"}', "no data channel"),
        (
            '{"type": "offer", "sdp": "v=0\\r\\nm=application 9 nonsense\\r\\nc=IN IP4 x\\r\\n"}',
            "The offer's SDP was refused",
        ),
    ],
)
async def test_malformed_offers_get_400_with_the_reason(server, body, expected):
    status, answer = await post_json(server.offer_url, body)
    assert status == 400
    assert answer["type"] == "error"
    assert expected in answer["error"]
    await asyncio.to_thread(
        server.wait_for_line, r"Refused a WebRTC offer .*" + re.escape(expected)
    )


async def test_an_offer_must_be_posted(server):
    status, answer = await asyncio.to_thread(_get, server.offer_url)
    assert status == 405
    assert "POST the offer" in answer["error"]


def _get(url: str) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


async def test_a_vanishing_peer_is_disconnected_and_disturbs_nothing_else(server):
    monitor = LoopbackClient("monitor")
    doomed = LoopbackClient("doomed")
    try:
        await monitor.connect_over_http(server.offer_url)
        await doomed.connect_over_http(server.offer_url)
        doomed_peer = doomed.answer["peer"]
        await wait_for_text(monitor, "monitor", f"connect {doomed_peer} doomed")
        # Mid-message: a 60 kB message is on its way in SCTP chunks when the client's DTLS
        # transport goes away under its SCTP association, without closing the data channel.
        doomed.channels["doomed"].send(b"x" * 60000)
        await doomed.peer.sctp.transport.stop()
        await wait_for_text(monitor, "monitor", f"disconnect {doomed_peer} doomed")
        assert await monitor.exchange("monitor", "still serving") == "still serving"
        newcomer = LoopbackClient("new")
        try:
            await newcomer.connect_over_http(server.offer_url)
            assert await newcomer.exchange("new", "hi") == "hi"
        finally:
            await newcomer.close()
    finally:
        await doomed.close()
        await monitor.close()


async def test_a_consumer_closes_one_data_channel_and_the_others_stay(server):
    client = LoopbackClient("closing", "staying")
    try:
        await client.connect_over_http(server.offer_url)
        assert await client.exchange("closing", "close") == "bye"
        await client.wait_closed("closing")
        assert await client.exchange("staying", "still open") == "still open"
        # A data channel the client closes is a disconnect too; the peer stays.
        client.channels["staying"].close()
        await client.wait_closed("staying")
        await asyncio.to_thread(
            server.wait_for_line, rf"webrtc\.disconnect {client.answer['peer']} staying"
        )
    finally:
        await client.close()


async def test_limits_on_peers_and_message_size(webrtc_project):
    limits = ("--webrtc-max-peers", "1", "--webrtc-max-message-size", "1024")
    with webrtc_project.serve(*limits) as process:
        url = process.offer_url
        first, second = LoopbackClient("a"), LoopbackClient("b")
        try:
            offer = await first.offer()
            answer = await post_offer(url, offer)
            assert "a=max-message-size:1024" in answer["sdp"]
            # A client that ignores the announced limit: the server closes its data channel.
            answer["sdp"] = answer["sdp"].replace("max-message-size:1024", "max-message-size:0")
            await first.connect(answer)
            assert await first.exchange("a", b"y" * 1024) == b"y" * 1024
            first.channels["a"].send(b"y" * 1025)
            await first.wait_closed("a")
            await asyncio.to_thread(
                process.wait_for_line, r"sent a 1025-byte message, over max_message_size \(1024\)"
            )
            status, refused = await post_json(url, json.dumps(await second.offer()))
            assert status == 503
            assert "max_peers" in refused["error"]
        finally:
            await first.close()
            await second.close()
        assert process.terminate() == 0


async def test_sigterm_closes_every_peer_and_emits_their_disconnects(webrtc_project):
    with webrtc_project.serve() as process:
        url = process.offer_url
        client = LoopbackClient("left", "right")
        try:
            await client.connect_over_http(url)
            assert await client.exchange("left", "before") == "before"
            process.popen.send_signal(signal.SIGTERM)
            for label in ("left", "right"):
                await client.wait_closed(label)
            assert await asyncio.to_thread(process.wait) == 0
        finally:
            await client.close()
        peer = client.answer["peer"]
        assert f"webrtc.disconnect {peer} left" in process.output
        assert f"webrtc.disconnect {peer} right" in process.output
        assert "Closing 1 WebRTC peers." in process.output
