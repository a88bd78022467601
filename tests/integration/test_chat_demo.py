"""The chat demo (``examples/chat``), served by a real ``channels serve``, driven by Chromium.

The README's main command runs this demo; these tests run it the same way — ``manage.py
migrate``, then the ``channels serve`` console script — on a free port of 127.0.0.1, with
the database in a temporary directory, and drive Debian's headless Chromium through
Selenium and Debian's chromedriver. Chromium is kept on loopback: every host name other
than 127.0.0.1 fails to resolve, anything not on loopback goes to a proxy that is not there,
and its background services are off.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from chat_pages import EXAMPLE, enter_room, messages, say, sign_in, wait_for_message
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from channels_core.testing import browser
from channels_core.testing.processes import run, start_process
from channels_ws.testing import HandshakeRefused, WebSocketClient

LISTENING = r"http listening on .* → 127\.0\.0\.1:(?P<port>\d+)"
WAIT = 20

needs_chromium = pytest.mark.skipif(not browser.available(), reason=browser.MISSING)


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory):
    """The demo, migrated and served on a free port; yields its base URL."""
    env = {"CHAT_DATABASE": str(tmp_path_factory.mktemp("chat") / "db.sqlite3")}
    migrated = run([sys.executable, "manage.py", "migrate"], env=env, cwd=EXAMPLE, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    channels = Path(sys.executable).parent / "channels"
    args = [channels, "serve", "--settings", "chat_project.settings", "--pythonpath", "."]
    with start_process([*args, "-b", "127.0.0.1", "-p", "0"], env=env, cwd=EXAMPLE) as server:
        port = int(server.wait_for_line(LISTENING).group("port"))
        server.wait_for_line(r"Channels server ready")
        server.port = port
        server.url = f"http://127.0.0.1:{port}"
        yield server
        assert server.terminate() == 0, server.output


@needs_chromium
def test_two_users_in_a_room_see_each_other_and_another_room_sees_nothing(
    chat_server, browsers, tmp_path
):
    ada, grace, linus = browsers(), browsers(), browsers()
    for driver, name, room in ((ada, "ada", "lobby"), (grace, "grace", "lobby")):
        sign_in(driver, chat_server.url, name)
        enter_room(driver, room)
    sign_in(linus, chat_server.url, "linus")
    enter_room(linus, "kernel")
    assert ada.current_url == f"{chat_server.url}/rooms/lobby/"

    say(ada, "Hello from Ada")
    assert wait_for_message(grace, "ada Hello from Ada") == ["ada Hello from Ada"]
    say(grace, "Hi Ada <b>not bold</b>")
    expected = ["ada Hello from Ada", "grace Hi Ada <b>not bold</b>"]
    assert wait_for_message(ada, "grace Hi Ada <b>not bold</b>") == expected
    assert wait_for_message(grace, "grace Hi Ada <b>not bold</b>") == expected

    say(linus, "Only in the kernel room")
    assert wait_for_message(linus, "linus Only in the kernel room") == [
        "linus Only in the kernel room"
    ]
    # The server writes to each connection in order, so had Grace been sent Linus's message
    # it would come before this one.
    say(ada, "Still here")
    assert wait_for_message(grace, "ada Still here") == [*expected, "ada Still here"]
    assert messages(linus) == ["linus Only in the kernel room"]

    grace.save_screenshot(str(tmp_path / "lobby.png"))
    assert (tmp_path / "lobby.png").stat().st_size > 0

    # The history is stored: a new page of the room shows it, rendered by the Django view.
    grace.refresh()
    assert messages(grace) == [*expected, "ada Still here"]


@needs_chromium
def test_a_bad_room_name_and_a_bad_user_name_are_explained(chat_server, browsers):
    driver = browsers()
    driver.get(f"{chat_server.url}/sign-in/")
    driver.find_element(By.ID, "name").send_keys("two words")
    driver.find_element(By.CSS_SELECTOR, "form.line button").click()
    error = WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CLASS_NAME, "error"))
    assert "without spaces" in error[0].text
    sign_in(driver, chat_server.url, "margaret")
    field = driver.find_element(By.ID, "room-name")
    field.send_keys("Not A Room!")
    field.submit()
    error = WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CLASS_NAME, "error"))
    assert "lower-case letters, digits and dashes" in error[0].text


@needs_chromium
def test_the_consumer_explains_a_message_it_cannot_take(chat_server, browsers):
    driver = browsers()
    sign_in(driver, chat_server.url, "barbara")
    cookie = f"sessionid={driver.get_cookie('sessionid')['value']}"
    with WebSocketClient.connect(
        chat_server.port, "/ws/rooms/checks/", headers=[("Cookie", cookie)]
    ) as client:
        # The room's own frames first: who is online, this connection's join, and where the
        # room's history stands (nothing to recover for a first connection).
        frames = [json.loads(client.receive()) for _ in range(3)]
        assert sorted(frame.get("presence") or frame["channels"] for frame in frames) == [
            "join", "recovered", "state",
        ]  # fmt: skip
        client.send_text(json.dumps({"text": "   "}))
        assert json.loads(client.receive()) == {
            "error": 'Send {"text": "..."} with some text in it.'
        }
        client.send_text(json.dumps({"text": "x" * 1001}))
        assert json.loads(client.receive()) == {
            "error": "That message has 1001 characters; the limit is 1000. Split it in two."
        }
        client.send_text(json.dumps({"text": "fine"}))
        assert json.loads(client.receive())["message"]["author"] == "barbara"


def test_a_websocket_without_a_signed_in_user_is_refused(chat_server):
    with pytest.raises(HandshakeRefused) as refused:
        WebSocketClient.connect(chat_server.port, "/ws/rooms/lobby/")
    assert refused.value.status == 403
