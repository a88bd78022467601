"""The chat demo over HTTP/2, driven by a real Chromium: pages by h2, the room by RFC 8441.

``channels serve`` runs the demo (``examples/chat``, as ``test_chat_demo.py``
runs it) on an ``ssl:`` endpoint of 127.0.0.1 with a self-signed certificate that ``openssl``
makes, and the protocols http, websocket and http2. Debian's headless Chromium, through
Selenium and Debian's chromedriver, ignores the certificate's issuer, negotiates h2 by ALPN
and, because the server's SETTINGS offer SETTINGS_ENABLE_CONNECT_PROTOCOL, opens the room's
WebSocket as an extended CONNECT stream on that same connection; without that setting it
would fall back to an HTTP/1.1 upgrade on a connection of its own, and the room would work
all the same. So the page reports the protocol it was loaded with, the browser the status
of each WebSocket handshake (200 for a CONNECT, 101 for an upgrade), and the server's log
(``channels_http2.websocket``, at INFO) each WebSocket it took from an HTTP/2 stream.
Chromium is kept on loopback as in the chat demo's test.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from chat_pages import EXAMPLE, enter_room, say, sign_in, wait_for_message

from channels_core.testing import browser
from channels_core.testing.processes import run, start_process, wait_until

LISTENING = r"http listening on ssl:0:\S+ → 127\.0\.0\.1:(?P<port>\d+)"
OVER_HTTP2 = r"WebSocket over HTTP/2 \(RFC 8441\) for (?P<path>\S+) on stream (?P<stream>\d+)\."
WAIT = 20

pytestmark = pytest.mark.skipif(not browser.available(), reason=browser.MISSING)


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory, certificate):
    """The demo, migrated and served over TLS with HTTP/2; yields the running server."""
    key, cert = certificate
    env = {"CHAT_DATABASE": str(tmp_path_factory.mktemp("chat") / "db.sqlite3")}
    migrated = run([sys.executable, "manage.py", "migrate"], env=env, cwd=EXAMPLE, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    channels = Path(sys.executable).parent / "channels"
    with start_process(
        [
            *(channels, "serve", "--settings", "chat_project.settings", "--pythonpath", "."),
            *("-v", "1", "--protocol", "http", "--protocol", "websocket", "--protocol", "http2"),
            *("--endpoint", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"),
        ],
        env=env,
        cwd=EXAMPLE,
    ) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        server.wait_for_line(r"Channels server ready")
        server.url = f"https://127.0.0.1:{port}"
        yield server
        assert server.terminate() == 0, server.output


def navigation_protocol(driver: Any) -> str:
    """The protocol the current page was loaded with, as the browser reports it (``h2``)."""
    return driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].nextHopProtocol;"
    )


def websocket_handshake_statuses(driver: Any) -> list[int]:
    """The status of each WebSocket handshake the browser completed since the last call:
    101 for an HTTP/1.1 upgrade, 200 for an extended CONNECT (RFC 8441, section 5)."""
    statuses = []
    for entry in driver.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        if event["method"] == "Network.webSocketHandshakeResponseReceived":
            statuses.append(event["params"]["response"]["status"])
    return statuses


def test_the_chat_room_works_over_http2_and_its_websockets_are_extended_connects(
    chat_server, browsers
):
    ada, grace = (browsers("--ignore-certificate-errors", logs=True) for _ in range(2))
    for driver, name in ((ada, "ada"), (grace, "grace")):
        sign_in(driver, chat_server.url, name)
        assert navigation_protocol(driver) == "h2"
        enter_room(driver, "lobby")
        assert driver.current_url == f"{chat_server.url}/rooms/lobby/"
        assert navigation_protocol(driver) == "h2"
        assert websocket_handshake_statuses(driver) == [200]

    say(ada, "Hello over HTTP/2")
    assert wait_for_message(grace, "ada Hello over HTTP/2") == ["ada Hello over HTTP/2"]
    say(grace, "Hi Ada")
    expected = ["ada Hello over HTTP/2", "grace Hi Ada"]
    assert wait_for_message(ada, "grace Hi Ada") == expected
    assert wait_for_message(grace, "grace Hi Ada") == expected

    # The server handed both rooms' WebSockets to the websocket protocol from HTTP/2 streams
    # (an HTTP/1.1 upgrade never passes there), and no more: neither page reconnected.
    opened = wait_until(
        lambda: [
            match.group("path")
            for match in map(re.compile(OVER_HTTP2).search, chat_server.lines)
            if match
        ],
        "the server to log the WebSockets over HTTP/2",
        timeout=WAIT,
    )
    assert opened == ["/ws/rooms/lobby/", "/ws/rooms/lobby/"], chat_server.output
