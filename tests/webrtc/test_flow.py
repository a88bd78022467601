"""Write flow control on WebRTC data channels: a client that stops reading costs the server at
most ``CHANNELS["WRITE_BUFFER"]``'s limit, and its data channel is closed; one that reads
gets everything. Real ``channels serve`` processes and aiortc clients on 127.0.0.1 (the one
that stops reading in a process of its own, its event loop blocked)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

from channels_core.testing.processes import PeakMemory, start_process
from channels_webrtc.testing import LoopbackClient

STALLED_CLIENT = Path(__file__).resolve().parent / "stalled_client.py"
MB = 1024 * 1024


def sent_before(process, line: str) -> int:
    """How many messages the blast had sent (it logs every 50th) when *process* logged *line*."""
    lines = process.output.splitlines()
    index = next(i for i, text in enumerate(lines) if line in text)
    counts = [int(m[1]) for text in lines[:index] if (m := re.search(r"blast: sent (\d+)", text))]
    return max(counts, default=0)


def test_a_data_channel_whose_client_stops_reading_is_closed_and_memory_stays_bounded(
    webrtc_project,
):
    bounds = json.dumps({"timeout": 2})
    with webrtc_project.serve(WEBRTC_WRITE_BUFFER=bounds) as server:
        # A first peer loads what every peer needs (aiortc's modules, DTLS): not counted.
        assert asyncio.run(exchange(server.offer_url)) == "still here"
        # About 96 MB in 60 kB messages: without flow control aiortc would queue it all.
        with (
            PeakMemory(server.popen.pid) as memory,
            start_process(
                [sys.executable, str(STALLED_CLIENT), server.offer_url, "blast 1600 60000"]
            ) as client,
        ):
            client.wait_for_line("stalled", timeout=30)
            closing = server.wait_for_line(
                r"Closing data channel 'blast' of peer \w+: its client does not read what "
                r"it is sent \(over 1048576 unsent bytes for 2\.0 s\)",
                timeout=30,
            ).string
            done = server.wait_for_line(r"blast: (\d+) of 1600 sent while open", timeout=30)
        assert int(done.group(1)) < 200, server.output
        assert sent_before(server, closing) < 200
        assert memory.growth < 30 * MB, f"RSS grew by {memory.growth / MB:.1f} MB"
        assert server.output.count("Closing data channel 'blast'") == 1
        assert "Traceback" not in server.output
        # The server goes on serving other peers.
        assert asyncio.run(exchange(server.offer_url)) == "still here"
        assert server.terminate() == 0


async def exchange(url: str) -> str:
    client = LoopbackClient("echo")
    try:
        await client.connect_over_http(url)
        return await client.exchange("echo", "still here")
    finally:
        await client.close()


async def test_a_client_that_reads_gets_every_message_of_a_blast(webrtc_project):
    with webrtc_project.serve() as server:
        client = LoopbackClient("blast")
        try:
            await client.connect_over_http(server.offer_url)
            client.channels["blast"].send("blast 200 60000")
            for index in range(200):
                message = await client.receive("blast")
                assert message[:4] == index.to_bytes(4, "big")
                assert len(message) == 60000
            await asyncio.to_thread(server.wait_for_line, "blast: 200 of 200 sent while open")
        finally:
            await client.close()
        assert "does not read" not in server.output
