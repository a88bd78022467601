"""A Redis restart in worker mode: a short one is invisible to clients, a long one is refused.

Real processes: a ``redis-server`` of the test's own, which it kills (``SIGKILL``) and starts
again on the same port, ``channels serve --mode worker`` and a ``channels worker``, and
WebSocket clients streaming numbered messages to the echo consumer meanwhile. The Redis
server keeps an append-only file written before each reply (``appendfsync always``), so what
it held when it was killed is there again after the restart: the tests check what the
processes do, not what a Redis without persistence loses (docs/redis.md says that).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request

import pytest

from channels_core.testing.redis import RedisServer

pytestmark = pytest.mark.slow

PERSISTENT = ["--appendonly", "yes", "--appendfsync", "always"]


@pytest.fixture
def restartable(project):
    """The worker-mode project on a Redis server of its own, which the test may restart."""
    with RedisServer(extra_args=PERSISTENT) as server:
        project.env["WM_REDIS_URL"] = server.url
        yield project, server


LAYER = "The channel layer 'default'"


def get_status(port: int, body: bytes | None = None) -> int:
    """The status of GET /hello/ (a POST with *body*)."""
    try:
        url = f"http://127.0.0.1:{port}/hello/"
        with urllib.request.urlopen(url, data=body, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def collapse(echoes: list[str]) -> list[str]:
    """*echoes* without the repeats of the message just before (a send cut off by the crash,
    which Redis had taken before it went away, is sent again: at least once)."""
    return [echo for n, echo in enumerate(echoes) if n == 0 or echo != echoes[n - 1]]


def test_a_short_redis_restart_closes_no_websocket_and_loses_nothing(restartable, streamer, until):
    project, redis = restartable
    server, port = project.server("--mode", "worker")
    # One consumer at a time: the echoes come in the order the layer hands the messages over
    # (several threads may finish a burst of one connection's messages in any order).
    worker = project.worker("--threads", "1")
    stream = streamer(port, 4)
    stream.wait_for_versions("v1", 20)
    redis.kill()
    time.sleep(3)
    redis.start()
    time.sleep(2)
    stream.stop()
    # Every message echoed (a count would not do: a message may be echoed twice, below).
    every = stream.every_message()
    with contextlib.suppress(AssertionError):  # the missing ones are named below
        until(lambda: every <= {reply["echo"] for reply in stream.replies()}, "every echo", 40)
    closed = [client.closed_with for client in stream.clients if client.closed_with is not None]
    assert not closed, f"the server closed WebSockets with {closed}:\n{server.output}"
    missing = every - {reply["echo"] for reply in stream.replies()}
    assert not missing, f"{len(missing)} of {sum(stream.sent)} messages lost: {sorted(missing)}"
    for index, client in enumerate(stream.clients):
        echoes = collapse([reply["echo"] for reply in client.replies])
        assert echoes == [f"{index}-{n}" for n in range(stream.sent[index])], echoes
    # The outage was ridden out, and logged once as it began and once as it ended.
    assert server.output.count(f"{LAYER} is unreachable") == 1, server.output
    assert server.output.count(f"{LAYER} is back after") == 1, server.output
    assert "Closing the WebSocket" not in server.output
    assert "held for it are lost" not in server.output
    assert worker.returncode is None, worker.output
    assert "Traceback" not in worker.output, worker.output
    assert get_status(port) == 200


def killed_after_an_echo(restartable, ws_clients, **outage):
    """Worker mode with ``LAYER_OUTAGE`` = *outage*: a WebSocket client echoed once, then
    Redis killed. (server, port, client)."""
    project, redis = restartable
    project.env["WM_OUTAGE"] = json.dumps(outage)
    server, port = project.server("--mode", "worker")
    project.worker()
    client = ws_clients(port, "/ws/echo/")
    client.send("before")
    assert client.wait_for_replies(1)[0]["echo"] == "before"
    redis.kill()
    return server, port, client


def test_an_outage_longer_than_the_timeout_is_refused_then_served_again(
    restartable, ws_clients, until
):
    redis = restartable[1]
    server, port, client = killed_after_an_echo(restartable, ws_clients, timeout=1)
    client.send("held")  # held, and kept past the timeout: it was accepted
    server.wait_for_line(f"{LAYER} is unreachable", timeout=20)
    server.wait_for_line("the 1 sends held for it are kept and sent then", timeout=20)
    assert get_status(port) == 503
    client.send("refused")
    until(lambda: client.closed_with is not None, "the WebSocket closed")
    assert client.closed_with == 1013
    assert "longer than CHANNELS['LAYER_OUTAGE']['timeout'] (1.0 s)" in server.output
    redis.start()
    # Served again once Redis answers: the first send that gets through ends the outage.
    until(lambda: get_status(port) == 200, "an answer after the restart", timeout=30)
    assert f"{LAYER} is back after" in server.output
    again = ws_clients(port, "/ws/echo/")
    again.send("after")
    assert again.wait_for_replies(1)[0]["echo"] == "after"


def test_a_full_outage_buffer_refuses_what_does_not_fit(restartable, ws_clients, until):
    redis = restartable[1]
    server, port, client = killed_after_an_echo(restartable, ws_clients, buffer=4000)
    # A request bigger than the whole buffer is refused: 503 (the outage is younger than
    # its 10 s timeout, so this is the buffer's doing).
    assert get_status(port, b"x" * 5000) == 503
    sent = 0
    deadline = time.monotonic() + 20
    while client.closed_with is None and time.monotonic() < deadline:
        client.send(f"{sent}:" + "x" * 1000)
        sent += 1
        time.sleep(0.05)
    assert client.closed_with == 1013
    assert 1 <= sent <= 10
    assert "fill CHANNELS['LAYER_OUTAGE']['buffer'] (4000 bytes)" in server.output
    redis.start()
    server.wait_for_line(f"{LAYER} is back after", timeout=30)
    assert get_status(port) == 200
