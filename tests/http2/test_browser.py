"""The chat demo over HTTP/2, driven by a real Chromium: pages by h2, the room by RFC 8441.

``channels serve`` runs the demo (``examples/chat``, as ``tests/integration/test_chat_demo.py``
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
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from channels_core.testing.processes import run, start_process, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chat"
LISTENING = r"http listening on ssl:0:\S+ → 127\.0\.0\.1:(?P<port>\d+)"
OVER_HTTP2 = r"WebSocket over HTTP/2 \(RFC 8441\) for (?P<path>\S+) on stream (?P<stream>\d+)\."
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 20

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="Debian's chromium and chromium-driver are not installed "
        "(apt-get install chromium chromium-driver; .ci/run does it)",
    ),
    pytest.mark.skipif(
        shutil.which("openssl") is None, reason="needs openssl (Debian: apt-get install openssl)"
    ),
]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert


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


@pytest.fixture
def browsers():
    """Start headless Chromium sessions on demand, each with its own profile (its own user)."""
    started: list[webdriver.Chrome] = []

    def start() -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new",
            "--no-sandbox",  # tests run as root
            "--disable-dev-shm-usage",
            "--window-size=900,640",
            "--ignore-certificate-errors",  # the test's self-signed certificate
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",  # loopback bypasses proxies; nothing else does
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--no-first-run",
            "--no-pings",
        ):
            options.add_argument(argument)
        # The browser's console (shown when a room does not open) and its network events
        # (which carry the WebSocket handshake's status).
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        started.append(driver)
        driver.set_page_load_timeout(WAIT)
        return driver

    try:
        yield start
    finally:
        for driver in started:
            driver.quit()


def sign_in(driver: webdriver.Chrome, base: str, name: str) -> None:
    """Sign in through the demo's sign-in page and land on the list of rooms."""
    driver.get(f"{base}/sign-in/")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.CSS_SELECTOR, "form.line button").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.ID, "me"))
    assert driver.find_element(By.ID, "me").text == name


def enter_room(driver: webdriver.Chrome, room: str) -> None:
    """Enter *room* through the rooms form, then wait for its WebSocket to be open."""
    field = driver.find_element(By.ID, "room-name")
    field.send_keys(room)
    field.submit()
    try:
        WebDriverWait(driver, WAIT).until(
            lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "open"
        )
    except TimeoutException:
        raise AssertionError(
            f"The WebSocket of room {room!r} did not open within {WAIT} s. "
            f"Browser console: {driver.get_log('browser')}"
        ) from None


def say(driver: webdriver.Chrome, text: str) -> None:
    """Type *text* into the room's box and send it."""
    field = driver.find_element(By.ID, "text")
    field.send_keys(text)
    field.submit()


def messages(driver: webdriver.Chrome) -> list[str]:
    """The room's messages as shown, ``"author text"``."""
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#messages li")]


def wait_for_message(driver: webdriver.Chrome, shown: str) -> list[str]:
    """Wait until *shown* is the last message on the page; return them all."""
    WebDriverWait(driver, WAIT).until(lambda d: messages(d)[-1:] == [shown])
    return messages(driver)


def navigation_protocol(driver: webdriver.Chrome) -> str:
    """The protocol the current page was loaded with, as the browser reports it (``h2``)."""
    return driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].nextHopProtocol;"
    )


def websocket_handshake_statuses(driver: webdriver.Chrome) -> list[int]:
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
    ada, grace = browsers(), browsers()
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
