"""The bare WebRTC reference: the same echo on aiortc alone, no Channels.

It answers offers POSTed to ``/webrtc/offer`` (a minimal asyncio HTTP/1.1 handler, one request
per connection) and echoes every data-channel message straight from aiortc's ``message``
event. Peers are set up as the ``webrtc`` protocol sets up its own: ``iceServers=[]`` and host
candidates on 127.0.0.1 only (``channels_webrtc.ice.gathering_on``, which only wraps aioice's
address lookup), on the same uvloop event loop ``channels serve`` runs on.

Usage::

    python benchmarks/apps/bare_webrtc.py PORT
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from aiortc import RTCPeerConnection, RTCSessionDescription

from channels_core.server import new_event_loop
from channels_webrtc.ice import configuration, gathering_on

peers: set[RTCPeerConnection] = set()


def echo_on(channel) -> None:
    """Send every message of *channel* back."""
    channel.on("message", channel.send)


async def answer(offer: dict) -> dict:
    """A new peer's answer to *offer*."""
    peer = RTCPeerConnection(configuration([]))
    peers.add(peer)
    peer.on("datachannel", echo_on)
    await peer.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
    with gathering_on(["127.0.0.1"]):
        await peer.setLocalDescription(await peer.createAnswer())
    return {"type": "answer", "sdp": peer.localDescription.sdp}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One signalling request: read the head and the body, answer with JSON."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = json.dumps(await answer(json.loads(await reader.readexactly(length)))).encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    writer.close()


async def serve(port: int) -> None:
    """Serve until SIGTERM, then close every peer."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await stop.wait()
    await asyncio.gather(*(peer.close() for peer in peers))


if __name__ == "__main__":
    loop = new_event_loop()
    loop.run_until_complete(serve(int(sys.argv[1])))
