"""channels-webrtc served by real ``channels serve`` processes, with aiortc client peers.

Everything stays on loopback: the project's settings give the server ``ice_servers=[]`` and
``host_addresses=["127.0.0.1"]``, the client peers come from
:func:`channels_webrtc.testing.loopback_peer` and gather on 127.0.0.1 only, and every SDP, offer
and answer, is checked for any other address before it is used.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from channels_core.testing.processes import start_process
from channels_webrtc.testing import (
    accept_answer,
    foreign_addresses,
    loopback_peer,
    make_offer,
    opened,
    post_json,
    post_offer,
)
from channels_ws.testing import WebSocketClient

PROJECT = Path(__file__).resolve().parent / "webrtc_project"
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
ENV = {
    "DJANGO_SETTINGS_MODULE": "webrtc_project.settings",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
}
TIMEOUT = 10.0


def serve(*args: str):
    """Start ``channels serve`` for the test project on a free port."""
    return start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            "serve",
            "--endpoint",
            "tcp:0:interface=127.0.0.1",
            *args,
        ],
        env=ENV,
    )


@pytest.fixture(scope="module")
def server():
    """One server for the module."""
    with serve() as process:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        process.offer_url = f"http://127.0.0.1:{process.port}/webrtc/offer"
        yield process


class Client:
    """An aiortc client peer with data channels whose messages are queued for the test."""

    def __init__(self, *labels: str) -> None:
        self.peer = loopback_peer()
        self.channels = {label: self.peer.createDataChannel(label) for label in labels}
        self.inbox = {label: asyncio.Queue() for label in labels}
        self.closed = {label: asyncio.Event() for label in labels}
        for label, channel in self.channels.items():
            channel.on("message", self.inbox[label].put_nowait)
            channel.on("close", self.closed[label].set)
        self.answer: dict = {}

    async def offer(self) -> dict:
        """The client's offer, checked to name no address but 127.0.0.1."""
        offer = await make_offer(self.peer)
        assert foreign_addresses(offer["sdp"]) == []
        assert "127.0.0.1" in offer["sdp"]
        return offer

    async def connect(self, answer: dict) -> None:
        """Check the answer for foreign addresses, apply it, wait for every channel to open."""
        assert answer["type"] == "answer"
        assert foreign_addresses(answer["sdp"]) == []
        assert "127.0.0.1" in answer["sdp"]
        self.answer = answer
        await accept_answer(self.peer, answer)
        for channel in self.channels.values():
            await opened(channel)

    async def connect_over_http(self, url: str) -> None:
        """Offer through the HTTP signalling consumer and connect."""
        await self.connect(await post_offer(url, await self.offer()))

    async def exchange(self, label: str, message: str | bytes) -> str | bytes:
        """Send *message* on *label* and return the next message that arrives there."""
        self.channels[label].send(message)
        return await self.receive(label)

    async def receive(self, label: str) -> str | bytes:
        """The next message on *label*."""
        return await asyncio.wait_for(self.inbox[label].get(), TIMEOUT)

    async def close(self) -> None:
        """Close the peer connection."""
        await self.peer.close()


async def wait_for_text(client: Client, label: str, text: str) -> None:
    """Read *label* until *text* arrives (other announcements are skipped)."""
    while (await client.receive(label)) != text:
        pass


async def test_http_signalling_echoes_text_and_bytes_on_several_channels(server):
    client = Client("chat", "binary", "third")
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
    first, second = Client("one"), Client("two")
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
    monitor = Client("monitor")
    doomed = Client("doomed")
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
        newcomer = Client("new")
        try:
            await newcomer.connect_over_http(server.offer_url)
            assert await newcomer.exchange("new", "hi") == "hi"
        finally:
            await newcomer.close()
    finally:
        await doomed.close()
        await monitor.close()


async def test_a_consumer_closes_one_data_channel_and_the_others_stay(server):
    client = Client("closing", "staying")
    try:
        await client.connect_over_http(server.offer_url)
        assert await client.exchange("closing", "close") == "bye"
        await asyncio.wait_for(client.closed["closing"].wait(), TIMEOUT)
        assert await client.exchange("staying", "still open") == "still open"
        # A data channel the client closes is a disconnect too; the peer stays.
        client.channels["staying"].close()
        await asyncio.wait_for(client.closed["staying"].wait(), TIMEOUT)
        await asyncio.to_thread(
            server.wait_for_line, rf"webrtc\.disconnect {client.answer['peer']} staying"
        )
    finally:
        await client.close()


async def test_limits_on_peers_and_message_size():
    with serve("--webrtc-max-peers", "1", "--webrtc-max-message-size", "1024") as process:
        url = f"http://127.0.0.1:{process.wait_for_line(LISTENING).group('port')}/webrtc/offer"
        first, second = Client("a"), Client("b")
        try:
            offer = await first.offer()
            answer = await post_offer(url, offer)
            assert "a=max-message-size:1024" in answer["sdp"]
            # A client that ignores the announced limit: the server closes its data channel.
            answer["sdp"] = answer["sdp"].replace("max-message-size:1024", "max-message-size:0")
            await first.connect(answer)
            assert await first.exchange("a", b"y" * 1024) == b"y" * 1024
            first.channels["a"].send(b"y" * 1025)
            await asyncio.wait_for(first.closed["a"].wait(), TIMEOUT)
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


async def test_sigterm_closes_every_peer_and_emits_their_disconnects():
    with serve() as process:
        url = f"http://127.0.0.1:{process.wait_for_line(LISTENING).group('port')}/webrtc/offer"
        client = Client("left", "right")
        try:
            await client.connect_over_http(url)
            assert await client.exchange("left", "before") == "before"
            process.popen.send_signal(signal.SIGTERM)
            for label in ("left", "right"):
                await asyncio.wait_for(client.closed[label].wait(), TIMEOUT)
            assert await asyncio.to_thread(process.wait) == 0
        finally:
            await client.close()
        peer = client.answer["peer"]
        assert f"webrtc.disconnect {peer} left" in process.output
        assert f"webrtc.disconnect {peer} right" in process.output
        assert "Closing 1 WebRTC peers." in process.output
