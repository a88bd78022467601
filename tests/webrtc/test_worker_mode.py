"""channels-webrtc in worker mode: ``channels serve --mode worker`` hosts the peers and puts
every event on a real Redis layer; a ``channels worker`` process runs the signalling and
data-channel consumers and answers on the reply channels.

The client peer stays on loopback as in ``test_server.py``: no ICE servers, host candidates on
127.0.0.1 only, and both SDPs checked for any other address by
:class:`channels_webrtc.testing.LoopbackClient`.
"""

from __future__ import annotations

import asyncio

from channels_core.testing.redis import running_redis
from channels_webrtc.testing import LoopbackClient


async def test_signalling_echo_and_disconnect_run_in_the_worker(webrtc_project):
    with (
        running_redis() as redis_url,
        webrtc_project.serve("--mode", "worker", WEBRTC_REDIS_URL=redis_url) as server,
        webrtc_project.worker(WEBRTC_REDIS_URL=redis_url) as worker,
    ):
        client = LoopbackClient("signed")
        try:
            # The offer reaches the worker's offer_consumer over the layer, which forwards it
            # to webrtc.offer for the server; the answer comes back as the HTTP response.
            await client.connect_over_http(server.offer_url)
            signature = f"{worker.popen.pid} "
            assert await client.exchange("signed", "hello") == signature + "hello"
            payload = bytes(range(256)) * 4
            assert await client.exchange("signed", payload) == signature.encode() + payload
            # The data channel the client closes is a webrtc.disconnect for the worker.
            client.channels["signed"].close()
            await client.wait_closed("signed")
            peer = client.answer["peer"]
            await asyncio.to_thread(
                worker.wait_for_line, rf"webrtc\.disconnect {peer} signed", timeout=10
            )
        finally:
            await client.close()
        assert worker.terminate() == 0, worker.output
        assert server.terminate() == 0, server.output
        assert "worker mode" in server.output
        # The server ran no consumer: the worker did.
        assert "webrtc.disconnect" not in server.output


async def test_a_full_layer_closes_the_data_channel(webrtc_project):
    # Capacity 1 and a worker that takes only the signalling (http.request): the data
    # channel's events stay on the layer, and its second message finds webrtc.receive full.
    with (
        running_redis() as redis_url,
        webrtc_project.serve(
            "--mode", "worker", WEBRTC_REDIS_URL=redis_url, WEBRTC_CAPACITY="1"
        ) as server,
        webrtc_project.worker(
            "--only-channels", "http.request", WEBRTC_REDIS_URL=redis_url, WEBRTC_CAPACITY="1"
        ),
    ):
        client = LoopbackClient("flood")
        try:
            await client.connect_over_http(server.offer_url)
            client.channels["flood"].send("first")
            client.channels["flood"].send("second")
            await client.wait_closed("flood")
            await asyncio.to_thread(
                server.wait_for_line,
                rf"Closing data channel 'flood' of peer {client.answer['peer']}: the layer "
                r"refused its webrtc\.receive event because that channel is full\.",
                timeout=10,
            )
        finally:
            await client.close()
        assert server.terminate() == 0, server.output
        assert "Traceback" not in server.output
