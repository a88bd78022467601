"""Worker mode end to end: ``channels serve --mode worker`` puts every event on a real Redis
layer, ``channels worker`` processes run the consumers and answer on the reply channels.

Real processes, real sockets, a real ``redis-server``: HTTP requests to a consumer and to a
Django view, WebSocket echo and group broadcast, channel pools, strict and slight ordering
across workers, and redeploying or killing workers while clients stay connected. And on an
IPC layer: ``channels serve module:channel_layer`` means worker mode, as with daphne.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from channels_http2.testing import H2Client

pytestmark = pytest.mark.slow


def get(port: int, path: str) -> str:
    """GET *path* from the server on *port*; the body as text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as reply:
        return reply.read().decode()


def answers(port: int, connect) -> dict:
    """What the project answers over HTTP and WebSocket, without who answered."""
    hello = json.loads(get(port, "/hello/?a=1"))
    echo = connect(port, "/ws/echo/")
    echo.send("ping")
    echoed = echo.wait_for_replies(1)[0]
    first, second = connect(port, "/ws/room/"), connect(port, "/ws/room/")
    first.send("hi all")
    return {
        "hello": hello["answer"],
        "page": get(port, "/page/"),
        "echo": echoed["echo"],
        "room": [first.wait_for_replies(1), second.wait_for_replies(1)],
    }


def test_worker_mode_serves_http_websocket_and_groups_as_in_process(project, ws_clients):
    server, port = project.server("--mode", "worker")
    workers = [project.worker(), project.worker()]
    in_workers = answers(port, ws_clients)
    assert in_workers == {
        "hello": "hello a=1",
        "page": "<h1>worker-mode page</h1>",
        "echo": "ping",
        "room": [["room: hi all"], ["room: hi all"]],
    }
    worker_pids = {worker.popen.pid for worker in workers}
    assert json.loads(get(port, "/hello/"))["pid"] in worker_pids
    assert "worker mode" in server.output

    # The same routing, run by the server itself: the same answers, from the server's process.
    inprocess, inprocess_port = project.server("--mode", "inprocess")
    assert answers(inprocess_port, ws_clients) == in_workers
    assert json.loads(get(inprocess_port, "/hello/"))["pid"] == inprocess.popen.pid
    assert "inprocess mode" in inprocess.output


def test_serving_a_channel_layer_means_worker_mode_as_with_daphne(ipc_project, ws_clients):
    # As daphne took it, in the project's directory: no --settings, no --pythonpath, the
    # asgi module names the settings (those of the IPC layer).
    server, port = ipc_project.server("wm_project.asgi:channel_layer", as_daphne=True)
    assert (
        "Serving in worker mode: wm_project.asgi:channel_layer names a channel layer, which "
        "means worker mode as with daphne, and neither --mode nor CHANNELS['MODE'] is set"
    ) in server.output
    assert "worker mode." in server.output
    worker = ipc_project.worker()
    # The worker answers, over HTTP and WebSocket: the server runs no consumer itself.
    hello = json.loads(get(port, "/hello/?a=1"))
    assert (hello["answer"], hello["pid"]) == ("hello a=1", worker.popen.pid)
    echo = ws_clients(port, "/ws/echo/")
    echo.send("ping")
    assert echo.wait_for_replies(1)[0]["pid"] == worker.popen.pid

    # An explicit mode wins: on the command line, or in the settings.
    by_flag, flag_port = ipc_project.server("wm_project.asgi:channel_layer", "--mode", "inprocess")
    assert json.loads(get(flag_port, "/hello/"))["pid"] == by_flag.popen.pid
    assert "Serving in inprocess mode: --mode inprocess." in by_flag.output
    by_setting, setting_port = ipc_project.server(
        "wm_project.asgi:channel_layer", WM_MODE="inprocess"
    )
    assert json.loads(get(setting_port, "/hello/"))["pid"] == by_setting.popen.pid
    assert "Serving in inprocess mode: CHANNELS['MODE'] is 'inprocess'." in by_setting.output
    # Without a target, the default stays in process.
    default, default_port = ipc_project.server()
    assert json.loads(get(default_port, "/hello/"))["pid"] == default.popen.pid
    assert "Serving in inprocess mode: neither --mode nor CHANNELS['MODE'] is set" in (
        default.output
    )


def test_channel_pools_each_handle_only_their_channels(project, ws_clients):
    _, port = project.server("--mode", "worker")
    project.worker("--only-channels", "http.*", pool="http")
    project.worker("--exclude-channels", "http.*", pool="ws", manage=True)
    pools = Counter(json.loads(get(port, f"/hello/?n={n}"))["pool"] for n in range(10))
    assert pools == {"http": 10}
    client = ws_clients(port, "/ws/echo/")
    for n in range(10):
        client.send(str(n))
    replies = client.wait_for_replies(10)
    assert Counter(reply["pool"] for reply in replies) == {"ws": 10}
    # Echo has no strict ordering: the pool's threads may answer out of order.
    assert sorted(int(reply["echo"]) for reply in replies) == list(range(10))


def test_strict_ordering_holds_across_three_workers(project, ws_clients):
    _, port = project.server("--mode", "worker")
    workers = [project.worker("--threads", "4") for _ in range(3)]
    client = ws_clients(port, "/ws/ordered/")
    count = 200
    for n in range(count):
        client.send(str(n))
    replies = client.wait_for_replies(count, timeout=60)
    assert [reply["echo"] for reply in replies] == [str(n) for n in range(count)]
    # The messages really were spread over the workers.
    pids = {reply["pid"] for reply in replies}
    assert pids <= {worker.popen.pid for worker in workers}
    assert len(pids) >= 2


def test_slight_ordering_runs_the_connect_before_the_messages_across_workers(project, ws_clients):
    # The connect consumer accepts, then works for a second: the messages sent meanwhile go
    # to the other workers, which hold them until the connect has finished.
    _, port = project.server("--mode", "worker")
    workers = [project.worker("--threads", "4") for _ in range(3)]
    client = ws_clients(port, "/ws/slight/")
    count = 20
    for n in range(count):
        client.send(str(n))
    replies = client.wait_for_replies(count)
    assert sorted(int(reply["echo"]) for reply in replies) == list(range(count))
    assert all(reply["connected"] for reply in replies)
    assert {reply["pid"] for reply in replies} <= {worker.popen.pid for worker in workers}


@pytest.mark.parametrize("gap", [0.0, 1.5], ids=["overlap", "gap"])
def test_redeploying_workers_loses_and_repeats_nothing(project, streamer, gap):
    # Room for what 20 clients send while no worker runs: the gap, plus the new workers'
    # start-up, which takes seconds on a loaded machine (the default 2,000 fills in 3 s, and a
    # full channel is refused, which is not what this test is about).
    project.env["WM_CAPACITY"] = "20000"
    _, port = project.server("--mode", "worker")
    old = [project.worker(), project.worker()]
    streamer = streamer(port, clients=20)
    try:
        streamer.wait_for_versions("v1", 100)
        if not gap:
            new = [project.worker(version="v2"), project.worker(version="v2")]
        for worker in old:
            worker.popen.send_signal(signal.SIGTERM)
        for worker in old:
            assert worker.wait(20) == 0, worker.output
        if gap:
            # No worker at all: messages wait on the layer for the new code.
            time.sleep(gap)
            new = [project.worker(version="v2"), project.worker(version="v2")]
        streamer.wait_for_versions("v2", 100)
    finally:
        streamer.stop()
    handled = streamer.handled()
    assert set(handled) == streamer.every_message(), "messages were lost"
    assert set(handled.values()) == {1}, "messages were handled twice"
    versions = Counter(reply["version"] for reply in streamer.replies())
    assert versions["v1"] >= 100
    assert versions["v2"] >= 100
    assert all(worker.returncode is None for worker in new)
    for worker in old:
        assert "Abandoned" not in worker.output


def test_a_killed_worker_loses_only_its_messages_in_flight(project, streamer, until):
    _, port = project.server("--mode", "worker")
    threads = 2
    victim = project.worker("--threads", str(threads))
    survivor = project.worker()
    streamer = streamer(port, clients=10)
    try:
        until(
            lambda: sum(reply["pid"] == victim.popen.pid for reply in streamer.replies()) >= 20,
            "20 replies from the worker to kill",
        )
        assert victim.terminate(signal.SIGKILL) == -signal.SIGKILL
        until(
            lambda: sum(reply["pid"] == survivor.popen.pid for reply in streamer.replies()) >= 200,
            "200 replies from the surviving worker",
        )
    finally:
        streamer.stop()
    handled = streamer.handled(settle=10)
    assert set(handled.values()) == {1}, "messages were handled twice"
    lost = streamer.every_message() - set(handled)
    # At most once: what the killed worker held is gone — the consumers it was running, and
    # what its layer had popped for the next receive (one message per channel it listens on:
    # websocket.connect, .receive, .disconnect and http.request).
    assert len(lost) <= threads + 4, sorted(lost)
    assert survivor.returncode is None


def test_a_one_thread_worker_serves_every_channel(project, ws_clients):
    # A receive loop waiting on a quiet channel (http.request) must not keep the one consumer
    # slot from the loops of the busy ones.
    _, port = project.server("--mode", "worker")
    project.worker("--threads", "1")
    for round_trip in range(3):
        client = ws_clients(port, "/ws/echo/")
        client.send(str(round_trip))
        assert client.wait_for_replies(1)[0]["echo"] == str(round_trip)
        assert json.loads(get(port, "/hello/"))["answer"] == "hello "


def test_a_full_layer_gets_http_clients_a_503_at_once(project, until):
    _, port = project.server("--mode", "worker", "--http-timeout", "3", WM_CAPACITY="1")
    statuses = []

    def status_of(path: str) -> None:
        try:
            get(port, path)
        except urllib.error.HTTPError as error:
            statuses.append((path, error.code, error.read().decode()))

    # No worker runs: the first request fills http.request (capacity 1) and waits.
    waiting = threading.Thread(target=status_of, args=("/hello/?first",))
    waiting.start()
    until(
        lambda: (
            json.loads(project.run("stats", "--json", "--channel", "http.request").stdout)[
                "channels"
            ]["http.request"]["pending"]
            == 1
        ),
        "the first request on the layer",
    )
    status_of("/hello/?second")
    waiting.join(20)
    assert statuses[0][:2] == ("/hello/?second", 503)
    assert "the workers cannot take the request now" in statuses[0][2]
    # Nobody took the first one: the server gives up on it after --http-timeout.
    assert statuses[1][:2] == ("/hello/?first", 504)


def test_a_full_layer_closes_a_websocket_with_1013_and_a_warning(project, ws_clients, until):
    # The worker accepts connections but takes nothing from websocket.receive, so its one
    # slot (capacity 1) fills with the first message and the layer refuses the second.
    server, port = project.server("--mode", "worker", WM_CAPACITY="1")
    project.worker("--only-channels", "websocket.connect")
    client = ws_clients(port, "/ws/echo/")
    client.send("first")
    client.send("second")
    until(lambda: client.closed_with is not None, "the server to close the WebSocket")
    assert client.closed_with == 1013
    until(lambda: "the layer refused its websocket.receive event" in server.output, "a warning")
    assert "Traceback" not in server.output
    # The message the layer took still waits for a worker; nothing else was disturbed.
    stats = json.loads(project.run("stats", "--json", "--channel", "websocket.receive").stdout)
    assert stats["channels"]["websocket.receive"]["pending"] == 1


def test_a_draining_server_waits_for_the_answers_workers_owe(project, until):
    server, port = project.server("--mode", "worker")
    answers = []
    # No worker yet: the request waits on the layer.
    asking = threading.Thread(target=lambda: answers.append(get(port, "/hello/?owed")))
    asking.start()
    until(
        lambda: (
            json.loads(project.run("stats", "--json", "--channel", "http.request").stdout)[
                "channels"
            ]["http.request"]["pending"]
            == 1
        ),
        "the request on the layer",
    )
    server.popen.send_signal(signal.SIGTERM)
    # A worker started while the server drains answers, and the answer reaches the client.
    project.worker()
    asking.join(20)
    assert answers, "the request was not answered"
    assert json.loads(answers[0])["answer"] == "hello owed"
    assert server.wait(20) == 0, server.output


def test_a_request_no_worker_answers_is_a_504_logged_with_its_path_and_channel(project):
    # The only worker takes WebSocket events, never http.request.
    server, port = project.server("--mode", "worker", "--http-timeout", "1")
    project.worker("--only-channels", "websocket.*")
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(port, "/hello/?unanswered")
    refused.value.close()
    assert refused.value.code == 504
    line = server.wait_for_line(r"No response to GET /hello/\?unanswered").string
    assert "(http.request, reply channel http.response." in line
    assert "No worker answered it" in line
    assert "--only-channels" in line
    assert server.output.count("No response to GET /hello/?unanswered") == 1
    # The same over HTTP/2, with its stream named.
    client = H2Client(port)
    try:
        status, _, _ = client.response(client.request("GET", "/hello/?unanswered-h2"))
    finally:
        client.close()
    assert status == 504
    line = server.wait_for_line(r"No response to GET /hello/\?unanswered-h2").string
    assert "(http.request, reply channel http.response." in line
    assert ", HTTP/2 stream 1)" in line
    assert "No worker answered it" in line
