"""A WebRTC client that asks for a blast and then reads nothing more.

``python stalled_client.py OFFER_URL REQUEST``: connects a data channel "blast" over HTTP
signalling (loopback only), sends REQUEST, waits for the first message of the answer, prints
``stalled``, then blocks its event loop: from then on nothing is read from its UDP socket,
so the server's SCTP gets no acknowledgements and what the consumer sends stays on the
server's side. The test kills it.
"""

from __future__ import annotations

import asyncio
import sys
import time

from channels_webrtc.testing import LoopbackClient


async def main(url: str, request: str) -> None:
    client = LoopbackClient("blast")
    await client.connect_over_http(url)
    client.channels["blast"].send(request)
    await client.receive("blast")
    print("stalled", flush=True)
    time.sleep(120)  # noqa: ASYNC251 - blocks the loop on purpose: a client that stopped reading


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
