"""Helpers for tests and benchmarks that drive a ``webrtc`` server with an aiortc client.

Every client peer here stays on loopback: no STUN or TURN server (``iceServers=[]``) and host
candidates on 127.0.0.1 only (:func:`~channels_webrtc.ice.gathering_on`)::

    client = loopback_peer()
    channel = client.createDataChannel("chat")
    offer = await make_offer(client)
    assert foreign_addresses(offer["sdp"]) == []
    answer = await post_offer(f"http://127.0.0.1:{port}/webrtc/offer", offer)
    await accept_answer(client, answer)
    await opened(channel)

:class:`LoopbackClient` does all of this for a client with several data channels whose
messages it queues for the test.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import urllib.error
import urllib.request
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from .ice import gathering_on

LOOPBACK = "127.0.0.1"
DEFAULT_TIMEOUT = 10.0
# Addresses in c= lines, candidate lines and anywhere else in an SDP text.
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ", re.MULTILINE)
_CONNECTION = re.compile(r"^c=IN IP[46] (\S+)", re.MULTILINE)


def loopback_peer() -> RTCPeerConnection:
    """An aiortc peer with no STUN or TURN server; gather with :func:`make_offer`."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def make_offer(peer: RTCPeerConnection) -> dict[str, str]:
    """Create and set *peer*'s offer, gathering on 127.0.0.1 only; return it as JSON-ready."""
    with gathering_on([LOOPBACK]):
        await peer.setLocalDescription(await peer.createOffer())
    return {"type": peer.localDescription.type, "sdp": peer.localDescription.sdp}


async def accept_answer(peer: RTCPeerConnection, answer: dict[str, Any]) -> None:
    """Set the server's *answer* on *peer*."""
    await peer.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))


async def opened(channel: RTCDataChannel) -> None:
    """Wait until *channel* is open; TimeoutError after ``DEFAULT_TIMEOUT`` seconds."""
    if channel.readyState == "open":
        return
    ready = asyncio.Event()
    channel.on("open", ready.set)
    await asyncio.wait_for(ready.wait(), DEFAULT_TIMEOUT)


def sdp_addresses(sdp: str) -> set[str]:
    """Every address an SDP text names: connection lines, candidates, and any IPv4 literal.

    The origin line's ``0.0.0.0`` (RFC 4566's placeholder, never contacted) is left out.
    """
    body = "\n".join(line for line in sdp.splitlines() if not line.startswith("o="))
    found = set(_IPV4.findall(body)) | set(_CONNECTION.findall(sdp)) | set(_CANDIDATE.findall(sdp))
    return found


def foreign_addresses(sdp: str) -> list[str]:
    """The addresses in *sdp* other than 127.0.0.1, sorted (an empty list is what tests want)."""
    foreign = []
    for address in sdp_addresses(sdp):
        try:
            loopback_v4 = ipaddress.ip_address(address) == ipaddress.ip_address(LOOPBACK)
        except ValueError:
            loopback_v4 = False  # a host name or mDNS name: not loopback either
        if not loopback_v4:
            foreign.append(address)
    return sorted(foreign)


def _post(url: str, body: bytes, timeout: float) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


async def post_json(url: str, body: bytes | str) -> tuple[int, Any]:
    """POST *body* to *url* (on 127.0.0.1); return the status and the decoded JSON answer.

    The request gives up after ``DEFAULT_TIMEOUT`` seconds.
    """
    data = body.encode() if isinstance(body, str) else body
    return await asyncio.to_thread(_post, url, data, DEFAULT_TIMEOUT)


async def post_offer(url: str, offer: dict[str, str]) -> dict:
    """POST *offer* to the HTTP signalling consumer at *url*; return the answer.

    Raises AssertionError with the server's error when it does not answer 200.
    """
    status, answer = await post_json(url, json.dumps(offer))
    assert status == 200, f"the offer got {status}: {answer}"
    return answer


class LoopbackClient:
    """An aiortc client peer with data channels named *labels*, checked to stay on loopback.

    Messages arriving on each data channel are queued for :meth:`receive`; ``closed[label]``
    is set when that data channel closes; ``answer`` is the server's answer once connected.
    Every wait gives up after ``DEFAULT_TIMEOUT`` seconds.
    """

    def __init__(self, *labels: str) -> None:
        self.peer = loopback_peer()
        self.channels = {label: self.peer.createDataChannel(label) for label in labels}
        self.inbox: dict[str, asyncio.Queue] = {label: asyncio.Queue() for label in labels}
        self.closed = {label: asyncio.Event() for label in labels}
        for label, channel in self.channels.items():
            channel.on("message", self.inbox[label].put_nowait)
            channel.on("close", self.closed[label].set)
        self.answer: dict = {}

    async def offer(self) -> dict[str, str]:
        """The client's offer, checked to name no address but 127.0.0.1."""
        offer = await make_offer(self.peer)
        assert foreign_addresses(offer["sdp"]) == [], offer["sdp"]
        assert LOOPBACK in offer["sdp"]
        return offer

    async def connect(self, answer: dict) -> None:
        """Check the answer for foreign addresses, apply it, wait for every channel to open."""
        assert answer["type"] == "answer", answer
        assert foreign_addresses(answer["sdp"]) == [], answer["sdp"]
        assert LOOPBACK in answer["sdp"]
        self.answer = answer
        await accept_answer(self.peer, answer)
        for channel in self.channels.values():
            await opened(channel)

    async def connect_over_http(self, url: str) -> None:
        """Offer through the HTTP signalling consumer at *url* and connect."""
        await self.connect(await post_offer(url, await self.offer()))

    async def exchange(self, label: str, message: str | bytes) -> str | bytes:
        """Send *message* on *label* and return the next message that arrives there."""
        self.channels[label].send(message)
        return await self.receive(label)

    async def receive(self, label: str) -> str | bytes:
        """The next message on *label*."""
        return await asyncio.wait_for(self.inbox[label].get(), DEFAULT_TIMEOUT)

    async def wait_closed(self, label: str) -> None:
        """Wait until the data channel *label* is closed."""
        await asyncio.wait_for(self.closed[label].wait(), DEFAULT_TIMEOUT)

    async def close(self) -> None:
        """Close the peer connection."""
        await self.peer.close()
