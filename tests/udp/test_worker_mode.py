"""Worker mode: ``channels serve --mode worker`` puts every datagram on a real Redis layer,
``channels worker`` processes run the consumers, and their replies come back through the
layer to the listening socket."""

from __future__ import annotations

import json

import pytest

from channels_core.names import random_suffix

pytestmark = pytest.mark.slow


def test_workers_answer_datagrams_through_redis(redis_server, serve, worker, client):
    env = {"UDP_REDIS_URL": redis_server, "UDP_PREFIX": f"udp.{random_suffix(8)}:"}
    server = serve("--mode", "worker", "--udp", "127.0.0.1:0", **env)
    assert "worker mode" in server.process.output
    first = worker(**env)
    talker = client(server.port)
    who = json.loads(talker.ask(b"who"))
    assert who["pid"] == first.popen.pid
    assert who["client"] == ["127.0.0.1", talker.port]
    assert who["server"] == ["127.0.0.1", server.port]
    assert talker.ask(b"hello") == b"HELLO"
    assert talker.ask(b"") == b"(empty)"
    talker.send(b"twice")
    assert sorted(talker.receive()[0] for _ in range(2)) == [b"ONE", b"TWO"]
    # A sync consumer in the worker adds the reply channel to a group and sends to it.
    other = client(server.port)
    assert talker.ask(b"join room") == b"JOINED room"
    assert other.ask(b"join room") == b"JOINED room"
    assert talker.receive()[0] == b"JOINED room"
    # The worker can be replaced while clients keep their reply channels.
    assert first.terminate() == 0
    second = worker(**env)
    assert json.loads(talker.ask(b"who"))["pid"] == second.popen.pid
    assert json.loads(talker.ask(b"who"))["reply_channel"] == who["reply_channel"]
    assert server.process.terminate() == 0
    assert second.terminate() == 0
