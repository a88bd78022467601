"""channels.js, the browser client, in headless Chromium against a real ``channels serve``.

The test project's page loads the client with ``{% static "channels/channels.js" %}`` and
hands it to the tests through ``window`` (``openClient``, ``report``, ...: see
``client_project/templates/client/page.html``). A dropped network is Chromium's own offline
switch (DevTools' network emulation); a dropped server is a real SIGTERM.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

from channels_core.testing import browser
from channels_core.testing.processes import free_port, run
from channels_ws.testing import WebSocketClient

PROJECT = Path(__file__).resolve().parent / "client_project"
WAIT = 15
FAST = {"minDelay": 50, "maxDelay": 400}  # reconnect soon: the tests wait for it

pytestmark = pytest.mark.skipif(not browser.available(), reason=browser.MISSING)


def open_page(driver: Any, server: Any) -> None:
    """Load the test page and wait until it has imported channels.js."""
    driver.get(f"{server.url}/")
    WebDriverWait(driver, WAIT).until(
        lambda d: d.execute_script("return document.body.dataset.ready")
    )


def open_client(
    driver: Any,
    name: str,
    url: str,
    streams: Sequence[str] = (),
    presence: Sequence[str] = (),
    **options: Any,
) -> None:
    """``new Client(url, options)`` on the page, recorded under *name* with the payloads of
    its *streams* and the joins and leaves of its *presence* groups."""
    listen = {"streams": list(streams), "presence": list(presence)}
    driver.execute_script("openClient(...arguments)", name, url, options, listen)


def run_js(driver: Any, name: str, script: str, *arguments: Any) -> Any:
    """Run *script* with ``client`` bound to the client *name*; return what it returns."""
    return driver.execute_script(
        f"const client = clients[arguments[0]].client; {script}", name, *arguments
    )


def report(driver: Any, name: str) -> dict:
    """What the client *name* reported: events, messages, streams, presence, state."""
    return driver.execute_script("return report(arguments[0])", name)


def wait_for(driver: Any, name: str, what: str, predicate) -> dict:
    """Wait until *predicate* holds for the report of client *name*; return that report.
    On a timeout the assertion shows the report and the browser's console."""
    try:
        return WebDriverWait(driver, WAIT).until(
            lambda d: (lambda seen: predicate(seen) and seen)(report(d, name))
        )
    except TimeoutException:
        raise AssertionError(
            f"Client {name!r} did not get {what} within {WAIT} s. It reported "
            f"{report(driver, name)}; console: {driver.get_log('browser')}"
        ) from None


def events(seen: dict, event: str) -> list[dict]:
    """The recorded events named *event*, without their name."""
    return [
        {k: v for k, v in item.items() if k != "event"}
        for item in seen["events"]
        if item["event"] == event
    ]


def said(seen: dict) -> list[str]:
    """What the group messages the client got said, in the order it delivered them."""
    return [message["said"] for message in seen["messages"] if "said" in message]


def set_offline(driver: Any, offline: bool) -> None:
    """Chromium's network emulation: *offline* fails every connection the page makes and
    fires the page's offline event (or brings the network back, firing online)."""
    driver.execute_cdp_cmd("Network.enable", {})
    conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": offline, **conditions})


def say_all(port: int, path: str, texts: list[str]) -> list[dict]:
    """Say *texts* in the history room at *path* from a connection of the test's own, and
    return the group's messages as that connection got them (once they did, the server has
    sent them to every member)."""
    with WebSocketClient.connect(port, path) as other:
        assert json.loads(other.receive())["channels"] == "recovered"
        for text in texts:
            other.send_text(json.dumps({"say": text}))
        return [json.loads(other.receive()) for _ in texts]


def test_staticfiles_finds_the_client_and_serves_it_as_javascript(server):
    settings = ["--settings", "client_project.settings", "--pythonpath", PROJECT]
    found = run([sys.executable, "-m", "django", "findstatic", "channels/channels.js", *settings])
    assert found.returncode == 0, found.stderr
    assert "channels_ws/static/channels/channels.js" in found.stdout
    with urllib.request.urlopen(f"{server.url}/static/channels/channels.js", timeout=10) as got:
        assert got.headers["Content-Type"].startswith("text/javascript")
        assert b"export class Client" in got.read()


def test_streams_plain_messages_and_wrong_names(server, browsers):
    driver = browsers()
    open_page(driver, server)
    open_client(driver, "demux", f"ws://127.0.0.1:{server.port}/ws/demux/", streams=["echo"])
    run_js(
        driver, "demux", "client.stream('echo').send({n: 1}); client.stream('echo').send({n: 2})"
    )
    # A stream the page made no Stream for reaches the message listeners, frame and all.
    run_js(driver, "demux", "client.send({stream: 'upper', payload: {text: 'abc'}})")
    seen = wait_for(
        driver,
        "demux",
        "two echoes and a capital",
        lambda s: len(s["streams"]["echo"]) == 2 and s["messages"],
    )
    assert seen["streams"]["echo"] == [
        {"from": "echo", "payload": {"n": 1}},
        {"from": "echo", "payload": {"n": 2}},
    ]
    assert seen["messages"] == [{"stream": "upper", "payload": {"text": "ABC"}}]
    assert seen["state"] == "open"
    assert events(seen, "open") == [{"reconnected": False}]

    errors = driver.execute_script(
        """
        const attempts = [
            () => clients.demux.client.on("mesage", () => {}),
            () => new window.Client("/ws/demux/", {maxqueue: 5}),
            () => new window.Client("ftp://127.0.0.1/"),
        ];
        return attempts.map((attempt) => { try { attempt(); } catch (e) { return e.message; } });
        """
    )
    assert errors[0].startswith('There is no "mesage" event to listen to; the events are: open,')
    assert errors[1].startswith("Unknown Client option maxqueue; the options are: minDelay,")
    assert errors[2] == "ftp://127.0.0.1/ is not a WebSocket URL; give a ws:, wss: or relative URL."

    run_js(driver, "demux", "client.close()")
    seen = wait_for(driver, "demux", "its close", lambda s: events(s, "close"))
    assert seen["state"] == "closed"
    assert events(seen, "close") == [{"code": 1000, "reason": "", "wasClean": True, "delay": None}]
    assert run_js(driver, "demux", "try { client.send({}) } catch (e) { return e.message }") == (
        "This Client was closed; create a new one to send again."
    )


def test_a_restarted_server_gets_what_was_queued_and_the_lost_history_is_a_gap(serve, browsers):
    port = free_port()
    first = serve(port)
    driver = browsers()
    open_page(driver, first)
    open_client(driver, "echo", "/ws/echo/?name=ada", maxQueue=3, **FAST)
    open_client(driver, "room", "/ws/history/room/restart/?name=ada", **FAST)
    run_js(driver, "room", "client.send({say: 'before'})")
    wait_for(driver, "room", "its first message", lambda s: said(s) == ["before"])
    wait_for(driver, "echo", "its socket open", lambda s: s["state"] == "open")

    assert first.terminate() == 0, first.output
    wait_for(driver, "echo", "the server gone", lambda s: s["state"] == "connecting")
    for n in range(4):
        run_js(driver, "echo", "client.send(arguments[1])", {"n": n})
    run_js(driver, "room", "client.send({say: 'while down'})")
    # Let a few attempts fail against the closed port: the back-off grows, with jitter.
    wait_for(driver, "echo", "failed attempts", lambda s: len(events(s, "close")) >= 4)

    serve(port)
    seen = wait_for(driver, "echo", "the queue sent", lambda s: len(s["messages"]) == 3)
    assert seen["messages"] == [{"echo": {"n": n}} for n in (1, 2, 3)]
    dropped = [error for error in events(seen, "error") if error["type"] == "dropped"]
    assert dropped == [{"type": "dropped", "message": {"n": 0}}]
    assert events(seen, "open") == [{"reconnected": False}, {"reconnected": True}]
    closes = events(seen, "close")
    for attempt, close in enumerate(closes):
        assert 0 <= close["delay"] <= min(400, 50 * 2**attempt)
    assert closes[0]["code"] in (1001, 1012)  # the draining server said goodbye

    # The memory layer's history went with the first server: the room reports a gap (another
    # epoch, nothing kept), then takes the new epoch's messages.
    seen = wait_for(driver, "room", "the message sent while down", lambda s: len(said(s)) == 2)
    assert said(seen) == ["before", "while down"]
    old_epoch = seen["messages"][0]["position"][0]
    new_epoch = seen["messages"][1]["position"][0]
    assert new_epoch != old_epoch
    assert events(seen, "gap") == [
        {"group": "room-restart", "complete": False, "position": None},
    ]
    assert seen["positions"] == {"room-restart": [new_epoch, 1]}


@pytest.mark.parametrize("room", ["lobby", "kept"])
def test_presence_members_joins_and_leaves_between_two_browsers(server, browsers, room):
    """Presence in a group without history (``lobby``) and with it (``kept``), where joins
    and leaves are group messages with positions, replayed like any other."""
    ada, grace = browsers(), browsers()
    group = f"presence-{room}"
    url = f"/ws/presence/{room}/?name="
    for driver, name in ((ada, "ada"), (grace, "grace")):
        open_page(driver, server)
        open_client(driver, name, url + name, presence=[group], **FAST)
        wait_for(driver, name, "itself present", lambda s, name=name: name in s["members"][group])

    both = ["ada", "grace"]
    seen = wait_for(ada, "ada", "grace", lambda s: sorted(s["members"][group]) == both)
    assert seen["presence"][group] == ["join ada", "join grace"]
    assert seen["messages"] == []  # presence frames go to the Presence, not to "message"
    assert sorted(report(grace, "grace")["members"][group]) == both
    presence = "const p = client.presence(arguments[1]); return [p.channel, [...p.members]]"
    own, members = run_js(grace, "grace", presence, group)
    assert own.startswith("websocket.send")
    assert dict(members)[own] == {"name": "grace"}

    run_js(grace, "grace", "client.close()")
    seen = wait_for(ada, "ada", "grace gone", lambda s: s["members"][group] == ["ada"])
    before = ["join ada", "join grace", "leave grace"]
    assert seen["presence"][group] == before

    # Away and back: the new state replaces what the page knew, whatever it missed (its own
    # old connection left, a second grace joined), and this connection joins.
    set_offline(ada, True)
    wait_for(ada, "ada", "the drop", lambda s: s["state"] == "connecting")
    open_client(grace, "grace2", url + "grace", presence=[group], **FAST)
    wait_for(grace, "grace2", "only itself", lambda s: s["members"][group] == ["grace"])
    set_offline(ada, False)
    # Without history the page sees no event of what it missed; with history they are
    # replayed (in the order the group saw them), before the live join of the new connection.
    missed = {"lobby": [], "kept": ["join grace", "leave ada"]}[room]
    expected = len(before) + len(missed) + 1
    seen = wait_for(ada, "ada", "its new join", lambda s: len(s["presence"][group]) == expected)
    events_seen = seen["presence"][group]
    assert events_seen[: len(before)] == before
    assert sorted(events_seen[len(before) : -1]) == missed
    assert events_seen[-1] == "join ada"
    assert sorted(seen["members"][group]) == both


def test_what_a_room_said_during_a_network_drop_arrives_once_and_in_order(server, browsers):
    driver = browsers()
    open_page(driver, server)
    open_client(driver, "room", "/ws/history/room/drop/", **FAST)
    run_js(driver, "room", "client.send({say: 'one'})")
    wait_for(driver, "room", "its first message", lambda s: said(s) == ["one"])

    set_offline(driver, True)
    wait_for(driver, "room", "the drop", lambda s: s["state"] == "connecting")
    run_js(driver, "room", "client.send({say: 'mine, queued'})")
    sent = say_all(server.port, "/ws/history/room/drop/", ["two", "three", "four"])
    set_offline(driver, False)

    seen = wait_for(driver, "room", "everything", lambda s: len(said(s)) == 5)
    assert said(seen) == ["one", "two", "three", "four", "mine, queued"]
    assert [m.get("recovered", False) for m in seen["messages"]] == [
        False, True, True, True, False,
    ]  # fmt: skip
    assert seen["messages"][1:4] == [{**message, "recovered": True} for message in sent]
    offsets = [message["position"][1] for message in seen["messages"]]
    assert offsets == list(range(offsets[0], offsets[0] + 5))
    assert events(seen, "gap") == []
    recovered = events(seen, "recovered")
    assert [(r["complete"], r["gap"]) for r in recovered] == [(True, False), (True, False)]
    assert recovered[1]["position"] == sent[-1]["position"]


def test_a_room_that_kept_too_little_reports_a_gap(server, browsers):
    driver = browsers()
    open_page(driver, server)
    open_client(driver, "small", "/ws/history/small/trim/", **FAST)
    run_js(driver, "small", "client.send({say: 'seen'})")
    wait_for(driver, "small", "its first message", lambda s: said(s) == ["seen"])

    set_offline(driver, True)
    wait_for(driver, "small", "the drop", lambda s: s["state"] == "connecting")
    sent = say_all(server.port, "/ws/history/small/trim/", [f"missed {n}" for n in range(6)])
    set_offline(driver, False)

    seen = wait_for(driver, "small", "the recovery", lambda s: len(events(s, "recovered")) == 2)
    # The room keeps 3: those are replayed, and the 3 before them are a gap.
    assert said(seen) == ["seen", "missed 3", "missed 4", "missed 5"]
    assert events(seen, "gap") == [
        {"group": "small-trim", "complete": False, "position": sent[-1]["position"]},
    ]
    assert events(seen, "recovered")[1]["gap"] is True


def test_live_messages_met_during_a_replay_wait_and_repeats_are_dropped(server, browsers):
    """The Relay consumer sends what the test scripts: the orders a real group makes only
    by chance (live messages before, inside and after the replay, repeats, new epochs)."""
    driver = browsers()
    open_page(driver, server)
    open_client(driver, "relay", "/ws/relay/?page=1", **FAST)

    def relay(*frames: dict, **request: Any) -> None:
        """Ask the relay for *frames* (JSON), or a text or bytes frame, or a close."""
        run_js(driver, "relay", "client.send(arguments[1])", {"send": frames, **request})

    def message(n: int, epoch: str = "E", **extra: Any) -> dict:
        return {"group": "g", "position": [epoch, n], "n": n, **extra}

    def marker(complete: bool, position: list | None, group: str = "g") -> dict:
        return {"channels": "recovered", "group": group, "complete": complete, "position": position}

    def having(seen: dict, key: str) -> list[dict]:
        return [m for m in seen["messages"] if isinstance(m, dict) and key in m]

    def delivered(seen: dict) -> list:
        return [m["n"] for m in having(seen, "n")]

    def queries(seen: dict) -> list[str]:
        return [m["query"] for m in having(seen, "query")]

    # Frames that are not JSON objects reach the message listeners as they are.
    relay(text="not JSON", bytes=[0, 1, 255])
    relay(text="[1, 2]")
    seen = wait_for(driver, "relay", "the frames", lambda s: len(s["messages"]) == 4)
    assert seen["messages"][1:] == ["not JSON", {"binary": [0, 1, 255]}, [1, 2]]

    # The first connection: only the markers, then live messages, some sent before the
    # history was read but arriving after the marker (they took the layer's way).
    relay(marker(True, ["E", 2]), message(2), message(3), marker(True, ["H", 5], "h"))
    seen = wait_for(driver, "relay", "message 3", lambda s: delivered(s) == [2, 3])
    assert seen["positions"] == {"g": ["E", 3], "h": ["H", 5]}
    relay(close=True)
    seen = wait_for(driver, "relay", "the reconnection", lambda s: len(events(s, "open")) == 2)
    # It came back from message 3 of g, and from h's marker (no message of h came), keeping
    # the query of its URL.
    since = {"g": ["E", 3], "h": ["H", 5]}
    since = urllib.parse.quote(json.dumps(since, separators=(",", ":")), safe="!*'()")
    seen = wait_for(driver, "relay", "its query", lambda s: len(queries(s)) == 2)
    assert queries(seen) == ["page=1", f"page=1&channels_since={since}"]

    # The replay: live messages wait for the marker, repeats are dropped.
    relay(
        message(6),
        message(4),
        message(4, recovered=True),
        message(3, recovered=True),
        {"group": "g", "n": "no position"},
        message(5),
        message(5, recovered=True),
    )
    seen = wait_for(driver, "relay", "the replay", lambda s: delivered(s)[-1] == 5)
    assert delivered(seen) == [2, 3, 4, "no position", 5]
    relay(marker(True, ["E", 6]), message(6), message(7))
    seen = wait_for(driver, "relay", "the live ones", lambda s: delivered(s)[-1] == 7)
    assert [(m["n"], m.get("recovered", False)) for m in having(seen, "n")] == [
        (2, False), (3, False), (4, True), ("no position", False), (5, True), (6, False),
        (7, False),
    ]  # fmt: skip
    assert events(seen, "gap") == []

    # Another epoch outside a replay: a gap, and that epoch from then on.
    relay(message(1, "F"), message(1, "F"), message(2, "F"))
    seen = wait_for(driver, "relay", "epoch F", lambda s: delivered(s)[-1] == 2)
    assert delivered(seen)[-2:] == [1, 2]
    assert events(seen, "gap") == [{"group": "g", "complete": False, "position": ["F", 1]}]

    # A replay that is not complete: a gap at its marker, after what was still kept.
    relay(close=True)
    wait_for(driver, "relay", "the reconnection", lambda s: len(events(s, "open")) == 3)
    relay(message(9, "F"), message(8, "F", recovered=True), marker(False, ["F", 8]))
    seen = wait_for(driver, "relay", "the replay", lambda s: delivered(s)[-1] == 9)
    assert delivered(seen)[-2:] == [8, 9]
    assert events(seen, "gap")[1:] == [{"group": "g", "complete": False, "position": ["F", 8]}]
    assert seen["positions"] == {"g": ["F", 9], "h": ["H", 5]}
