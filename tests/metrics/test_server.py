"""channels-metrics served by real ``channels serve`` processes, scraped during real traffic.

Each server is a ``channels serve`` subprocess of ``metrics_project`` with the ``http``,
``websocket`` and ``metrics`` protocols on port 0 of 127.0.0.1; the real ports are read from
its "listening on" lines. Scrapes are parsed with prometheus_client's own parser, and the
figures are compared before and after real HTTP requests and WebSocket messages.
"""

from __future__ import annotations

import http.client
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from channels_core.testing.processes import (
    RunningProcess,
    run,
    start_process,
    wait_until,
)
from channels_ws.testing import WebSocketClient

PROJECT = Path(__file__).resolve().parent / "metrics_project"
CHANNELS = Path(sys.executable).with_name("channels")
TIMEOUT = 10.0
SERVE = (
    "serve", "--protocol", "http", "--protocol", "websocket", "--protocol", "metrics",
    "--endpoint", "tcp:0:interface=127.0.0.1", "--metrics", "127.0.0.1:0",
)  # fmt: skip
HELLO = "metrics_project.consumers.hello"
ECHO = "metrics_project.consumers.echo"


def project_env(**extra: str) -> dict[str, str]:
    """The environment of the project's processes."""
    return {
        "DJANGO_SETTINGS_MODULE": "metrics_project.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
        **extra,
    }


def listening_port(process: RunningProcess, protocol: str) -> int:
    """The port of *protocol*'s listener, from its "listening on … → host:port" line."""
    found = process.wait_for_line(rf"{protocol} listening on \S+ → 127\.0\.0\.1:(\d+)", 30)
    return int(found.group(1))


def parse(text: str) -> dict:
    """Prometheus text as ``{(sample name, ((label, value), …)): value}``, plus the families
    by name under ``"families"``."""
    samples: dict = {"families": {}}
    for family in text_string_to_metric_families(text):
        samples["families"][family.name] = family
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(scrape: dict, name: str, **labels: str) -> float:
    """The value of sample *name* with exactly *labels*; 0 when it is not there."""
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def series(scrape: dict, name: str) -> list[dict[str, str]]:
    """The labels of every sample named *name*."""
    return [dict(key[1]) for key in scrape if key != "families" and key[0] == name]


class Server:
    """A running ``channels serve`` with its HTTP and metrics ports."""

    def __init__(self, process: RunningProcess) -> None:
        self.process = process
        process.wait_for_line("Channels server ready", timeout=30)
        self.http_port = listening_port(process, "http")
        self.metrics_port = listening_port(process, "metrics")

    def metrics_connection(self) -> http.client.HTTPConnection:
        """A connection to the metrics listener, kept alive between requests."""
        return http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=TIMEOUT)

    def scrape(self, connection: http.client.HTTPConnection | None = None) -> dict:
        """One scrape of ``/metrics`` (on *connection*, kept open, when given), parsed."""
        own = connection is None
        connection = connection or self.metrics_connection()
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read().decode()
        finally:
            if own:
                connection.close()
        assert response.status == 200, body
        assert response.getheader("content-type").startswith("text/plain; version=0.0.4")
        return parse(body)

    def get(self, path: str) -> tuple[int, bytes]:
        """A GET on a connection of its own, closed after it: status and body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=TIMEOUT)
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_for(self, name: str, at_least: float, **labels: str) -> dict:
        """Scrape until sample *name* with *labels* reaches *at_least*; that scrape."""
        scrapes: list[dict] = []

        def reached() -> bool:
            scrapes.append(self.scrape())
            return value(scrapes[-1], name, **labels) >= at_least

        wait_until(reached, f"{name}{labels} >= {at_least}", timeout=TIMEOUT)
        return scrapes[-1]


def start_server(*args: str, **env: str) -> Server:
    """``channels serve`` (SERVE, then *args*) of the project, once it is ready."""
    process = start_process([CHANNELS, *SERVE, *args], env=project_env(**env))
    try:
        return Server(process)
    except BaseException:
        process.__exit__(None, None, None)
        raise


@pytest.fixture
def serve() -> Iterator:
    """``serve(*args, **env)`` starts a :class:`Server`; every one is killed at the end."""
    started: list[Server] = []

    def start(*args: str, **env: str) -> Server:
        started.append(start_server(*args, **env))
        return started[-1]

    yield start
    for server in started:
        server.process.__exit__(None, None, None)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One server for the tests that only compare figures before and after their traffic."""
    started = start_server()
    try:
        yield started
    finally:
        started.process.__exit__(None, None, None)


def test_http_requests_move_the_figures(server):
    before = server.scrape()
    for _ in range(5):
        assert server.get("/hello/") == (200, b"hello")
    after = server.wait_for(
        "channels_connections_closed_total",
        value(before, "channels_connections_closed_total", protocol="http") + 5,
        protocol="http",
    )

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("channels_connections_accepted_total", protocol="http") == 5
    assert moved("channels_connections_closed_total", protocol="http") == 5
    assert value(after, "channels_connections_open", protocol="http") == 0
    assert moved("channels_messages_received_total", channel="http.request") == 5
    assert moved("channels_messages_sent_total", channel="http.response") == 5
    assert moved("channels_consumer_duration_seconds_count", consumer=HELLO) == 5
    assert moved("channels_consumer_duration_seconds_sum", consumer=HELLO) > 0
    # Buckets are cumulative and end with +Inf, which holds every run.
    buckets = [
        value(after, "channels_consumer_duration_seconds_bucket", consumer=HELLO, le=le)
        for le in ("0.0001", "0.001", "0.01", "0.1", "1.0", "10.0", "+Inf")
    ]
    assert buckets == sorted(buckets)
    assert buckets[-1] == value(after, "channels_consumer_duration_seconds_count", consumer=HELLO)
    assert value(after, "channels_events_refused_total", channel="http.request") == 0
    assert value(after, "channels_messages_dropped_total", reason="full") == 0
    assert value(after, "channels_draining") == 0


def test_websocket_messages_move_the_figures(server):
    before = server.scrape()
    with WebSocketClient.connect(server.http_port, "/echo/") as client:
        for text in ("one", "two", "three"):
            client.send_text(text)
            assert client.receive() == text
        during = server.scrape()
        assert value(during, "channels_connections_open", protocol="websocket") == (
            value(before, "channels_connections_open", protocol="websocket") + 1
        )
        client.close()
    after = server.wait_for("channels_messages_received_total", 1, channel="websocket.disconnect")

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # The handshake is an HTTP connection, handed over to the WebSocket protocol.
    assert moved("channels_connections_accepted_total", protocol="http") == 1
    assert moved("channels_connections_closed_total", protocol="http") == 1
    assert moved("channels_connections_accepted_total", protocol="websocket") == 1
    assert moved("channels_connections_closed_total", protocol="websocket") == 1
    assert value(after, "channels_connections_open", protocol="websocket") == 0
    assert moved("channels_messages_received_total", channel="websocket.connect") == 1
    assert moved("channels_messages_received_total", channel="websocket.receive") == 3
    assert moved("channels_messages_received_total", channel="websocket.disconnect") == 1
    assert moved("channels_messages_sent_total", channel="websocket.send") == 3
    assert moved("channels_consumer_duration_seconds_count", consumer=ECHO) == 3


def test_names_types_and_help_follow_prometheus_conventions(server):
    server.get("/hello/")
    families = server.scrape()["families"]
    # prometheus_client adds a ``_created`` gauge (a timestamp) to each counter and histogram.
    ours = {
        name: family
        for name, family in families.items()
        if name.startswith("channels_") and not name.endswith("_created")
    }
    assert set(ours) == {
        "channels_connections_accepted",
        "channels_connections_closed",
        "channels_connections_open",
        "channels_messages_received",
        "channels_messages_sent",
        "channels_events_refused",
        "channels_messages_dropped",
        "channels_consumer_duration_seconds",
        "channels_layer_send_duration_seconds",
        "channels_layer_messages_pending",
        "channels_layer_oldest_message_age_seconds",
        "channels_in_flight",
        "channels_draining",
    }
    for name, family in ours.items():
        assert family.documentation, f"{name} has no HELP"
        assert family.type in ("counter", "gauge", "histogram"), name
        if family.type == "counter":
            assert {sample.name for sample in family.samples} <= {
                f"{name}_total",
                f"{name}_created",
            }, name
        if family.type == "histogram":  # durations, in the base unit
            assert name.endswith("_duration_seconds"), name
    assert ours["channels_consumer_duration_seconds"].type == "histogram"
    assert ours["channels_connections_open"].type == "gauge"
    assert ours["channels_draining"].type == "gauge"


def test_only_the_metrics_path_is_served(server):
    connection = server.metrics_connection()
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        assert response.status == 404
    finally:
        connection.close()


def test_draining_shows_on_a_scrape_kept_alive(serve):
    served = serve()
    scraper = served.metrics_connection()
    try:
        assert value(served.scrape(scraper), "channels_draining") == 0
        answers: list = []
        slow = threading.Thread(target=lambda: answers.append(served.get("/slow/")))
        slow.start()
        served.process.wait_for_line("slow consumer started", timeout=TIMEOUT)
        served.process.popen.terminate()
        served.process.wait_for_line("Draining", timeout=TIMEOUT)
        # The listener stopped accepting, and a connection kept alive is still answered.
        during = served.scrape(scraper)
        assert value(during, "channels_draining") == 1
        assert value(during, "channels_in_flight") >= 1
        slow.join(TIMEOUT)
        assert answers == [(200, b"slow done")]
    finally:
        scraper.close()
    assert served.process.wait(TIMEOUT) == 0


def test_a_bad_metrics_address_is_one_sentence():
    done = run([CHANNELS, *SERVE, "--metrics", "localhost"], env=project_env())
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert (
        "--metrics: the option metrics['listen'] is 'localhost'; 'localhost' is not an address "
        "to serve metrics on: write HOST:PORT with an IP address, such as 127.0.0.1:9100 or "
        "[::1]:9100" in done.stderr
    ), done.stderr


@pytest.mark.slow
def test_two_processes_sum_in_one_scrape(serve, tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    first = serve(PROMETHEUS_MULTIPROC_DIR=str(directory))
    second = serve(PROMETHEUS_MULTIPROC_DIR=str(directory))
    for _ in range(2):
        assert first.get("/hello/") == (200, b"hello")
    for _ in range(3):
        assert second.get("/hello/") == (200, b"hello")
    # The second process publishes every second; the first's page adds both up. A consumer's
    # run is counted when it returns, after its response went out, so a publication may come
    # between the two: wait for the run counts too.
    first.wait_for("channels_messages_received_total", 5, channel="http.request")
    summed = first.wait_for("channels_consumer_duration_seconds_count", 5, consumer=HELLO)
    assert value(summed, "channels_messages_received_total", channel="http.request") == 5
    assert value(summed, "channels_consumer_duration_seconds_count", consumer=HELLO) == 5
    assert value(second.scrape(), "channels_connections_accepted_total", protocol="http") >= 5
    pids = {str(first.process.popen.pid), str(second.process.popen.pid)}
    assert {labels["pid"] for labels in series(summed, "channels_draining")} == pids
    # A process gone: its counts stay in the sums, its gauges leave.
    second.process.terminate()
    after = first.scrape()
    assert value(after, "channels_messages_received_total", channel="http.request") == 5
    assert ("channels_draining", (("pid", str(second.process.popen.pid)),)) not in after


@pytest.mark.slow
def test_the_processes_of_one_server_sum_on_its_metrics_port(tmp_path):
    layer = tmp_path / "ipc"
    layer.mkdir()
    # No PROMETHEUS_MULTIPROC_DIR: the children keep their figures in the run directory the
    # parent gives them. Both listeners ask for port 0 and get a socket each.
    env = project_env(METRICS_IPC_PATH=str(layer))
    with start_process([CHANNELS, *SERVE, "--processes", "2"], env=env) as process:
        process.wait_for_line("Serving with 2 processes", timeout=30)
        served = Server(process)
        assert served.metrics_port != served.http_port
        for _ in range(10):
            assert served.get("/hello/") == (200, b"hello")
        # Whichever process answers the scrape, it adds up both.
        summed = served.wait_for("channels_messages_received_total", 10, channel="http.request")
        assert value(summed, "channels_messages_received_total", channel="http.request") == 10
        assert len(series(summed, "channels_draining")) == 2  # the children's, not the parent's
        assert process.terminate() == 0
