"""channels-udp served by real ``channels serve`` processes, to real UDP sockets on loopback.

Most tests share one in-process server (two IPv4 listeners and one IPv6 listener given on the
command line, ``max_datagram_size`` 1024 from the settings); those that read its logs'
counts, drain it or rate-limit it start their own.
"""

from __future__ import annotations

import json
import re
import select
import shutil
import signal
import socket
import subprocess
import time

import pytest


def test_each_datagram_is_an_event_and_the_reply_goes_back(echo_server, client):
    talker = client(echo_server.port)
    assert talker.ask(b"hello") == b"HELLO"
    who = json.loads(talker.ask(b"who"))
    assert who["client"] == ["127.0.0.1", talker.port]
    assert who["server"] == ["127.0.0.1", echo_server.port]
    assert re.fullmatch(r"udp\.send\.[\w-]+![\w-]+", who["reply_channel"])
    assert who["pid"] == echo_server.process.popen.pid


def test_one_reply_channel_per_client_address(echo_server, client):
    first, second = client(echo_server.port), client(echo_server.port)
    channels = [json.loads(talker.ask(b"who"))["reply_channel"] for talker in (first, second)]
    assert json.loads(first.ask(b"who"))["reply_channel"] == channels[0]
    assert channels[0] != channels[1]


def test_replies_leave_from_the_socket_the_datagram_came_to(echo_server, client):
    assert len(echo_server.ports) == 3
    for port, host in zip(echo_server.ports, ["127.0.0.1", "127.0.0.1", "::1"], strict=True):
        talker = client(port, host)
        talker.send(b"where")
        assert talker.receive() == (b"WHERE", (host, port))
    ipv6 = client(echo_server.ports[2], "::1")
    assert json.loads(ipv6.ask(b"who"))["client"] == ["::1", ipv6.port]


def test_an_empty_datagram_is_delivered(echo_server, client):
    assert client(echo_server.port).ask(b"") == b"(empty)"


def test_a_consumer_may_answer_several_times(echo_server, client):
    talker = client(echo_server.port)
    talker.send(b"twice")
    assert [talker.receive()[0] for _ in range(2)] == [b"ONE", b"TWO"]


def test_group_sends_reach_clients_through_the_layer(echo_server, client):
    first, second = client(echo_server.port), client(echo_server.port)
    assert first.ask(b"join lobby") == b"JOINED lobby"
    # The second join's group send goes through the layer to both members.
    assert second.ask(b"join lobby") == b"JOINED lobby"
    assert first.receive()[0] == b"JOINED lobby"


def test_the_largest_datagram_allowed_is_delivered(echo_server, client):
    assert client(echo_server.port).ask(b"a" * 1024) == b"A" * 1024


def test_socat_as_an_outside_client(echo_server):
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (Debian: apt-get install -y socat)")
    with subprocess.Popen(
        [socat, "-", f"UDP:127.0.0.1:{echo_server.port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as process:
        try:
            process.stdin.write(b"hello from socat\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 10)
            assert ready, "socat printed no reply within 10 s"
            assert process.stdout.readline() == b"HELLO FROM SOCAT\n"
        finally:
            process.kill()


def test_drops_and_failures_are_logged_counted_and_never_stop_the_listener(serve, client):
    server = serve("--udp", "127.0.0.1:0", "--udp-max-datagram-size", "100")
    talker = client(server.port)
    for _ in range(3):
        talker.send(b"x" * 101)
    # Replies the socket cannot send: too big for a datagram, and not bytes.
    talker.send(b"huge")
    talker.send(b"text")
    # Replies to a client whose socket is closed: the kernel answers ICMP port unreachable.
    gone = client(server.port)
    for _ in range(20):
        gone.send(b"to nowhere")
    gone.close()
    assert talker.ask(b"still here") == b"STILL HERE"
    assert client(server.port).ask(b"another") == b"ANOTHER"
    output = server.process.output
    assert "dropped 1 datagram(s) larger than max_datagram_size=100 bytes" in output
    assert "more than one datagram can carry" in output
    assert server.process.terminate() == 0
    assert re.search(
        r"udp 127\.0\.0\.1:\d+ closed: received 27 datagrams, dropped 3 oversized, "
        r"0 throttled, 0 refused by the layer; sent 22 replies, 2 failed\.",
        server.process.output,
    ), server.process.output


def test_sigterm_drains_the_consumers_in_flight(serve, client):
    server = serve("--udp", "127.0.0.1:0")
    talker = client(server.port)
    talker.send(b"slow")
    server.process.wait_for_line("slow consumer started")
    server.process.popen.send_signal(signal.SIGTERM)
    assert talker.receive()[0] == b"SLOW DONE"
    assert server.process.terminate() == 0
    assert "Draining" in server.process.output
    assert "Channels server stopped." in server.process.output


def test_a_flooding_client_is_throttled_while_others_are_served(serve, client):
    server = serve("--udp", "127.0.0.1:0", "--udp-rate", "20", "--udp-burst", "5")
    flood, polite = client(server.port), client(server.port)
    flood.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sent = 400
    answers = []
    started = time.monotonic()
    for number in range(sent):
        flood.send(b"f%d" % number)
        if number % 100 == 99:
            answers.append(ask_until_answered(polite, b"p%d" % number))
    elapsed = time.monotonic() - started
    assert answers == [b"P%d" % number for number in (99, 199, 299, 399)]
    flood.sock.settimeout(1)
    replies = []
    try:
        while True:
            replies.append(flood.receive()[0])
    except TimeoutError:
        pass
    # The bucket lets the burst through, then 20 per second.
    assert 5 <= len(replies) <= 5 + 20 * (elapsed + 1)
    output = server.process.output
    assert output.count(f"throttling 127.0.0.1:{flood.port},") == 1
    assert f"127.0.0.1:{polite.port}," not in output
    assert server.process.terminate() == 0
    throttled = int(re.search(r"(\d+) throttled", server.process.output).group(1))
    assert 0 < throttled <= sent - len(replies)


def ask_until_answered(talker, data: bytes, tries: int = 5) -> bytes:
    """Ask, and ask again while no answer to *data* comes: the flood may fill the server's
    receive buffer, and then the kernel drops datagrams, as UDP may."""
    talker.sock.settimeout(1)
    for _ in range(tries):
        talker.send(data)
        try:
            while True:
                reply = talker.receive()[0]
                if reply == data.upper():
                    return reply
        except TimeoutError:
            continue
    raise AssertionError(f"no answer to {data!r} after {tries} tries")
