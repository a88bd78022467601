"""The chat demo's live room in two headless Chromium pages: who is online, what a page
missed while its network was down, and a server restart that both pages ride out.

The demo runs as in ``test_chat_demo.py``, but on a fixed free port, so that it can be
stopped with SIGTERM and started again where the pages reconnect. Its page uses
``channels.js``: presence for the "Online now" list, recovery from the room group's history
for what a page missed, and a reload when that history is gone (the memory layer's goes
with the process).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from chat_pages import EXAMPLE, enter_room, messages, say, sign_in, wait, wait_for_message
from selenium.webdriver.common.by import By

from channels_core.testing import browser
from channels_core.testing.processes import free_port, run, start_process

pytestmark = pytest.mark.skipif(not browser.available(), reason=browser.MISSING)


class Demo:
    """The demo on one port, started and stopped at will."""

    def __init__(self, tmp_path: Path) -> None:
        self.env = {"CHAT_DATABASE": str(tmp_path / "db.sqlite3")}
        migrated = run(
            [sys.executable, "manage.py", "migrate"], env=self.env, cwd=EXAMPLE, timeout=60
        )
        assert migrated.returncode == 0, migrated.stderr
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        channels = Path(sys.executable).parent / "channels"
        args = [channels, "serve", "--settings", "chat_project.settings", "--pythonpath", "."]
        self.process = start_process(
            [*args, "-b", "127.0.0.1", "-p", str(self.port)], env=self.env, cwd=EXAMPLE
        )
        self.process.wait_for_line(r"Channels server ready")

    def stop(self) -> None:
        process, self.process = self.process, None
        with process:
            assert process.terminate() == 0, process.output


@pytest.fixture
def demo(tmp_path):
    running = Demo(tmp_path)
    running.start()
    yield running
    if running.process is not None:
        running.stop()


def online(driver) -> list[str]:
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#online li")]


def wait_online(driver, names: list[str]) -> None:
    wait(driver).until(lambda d: online(d) == names)


def wait_state(driver, state: str) -> None:
    wait(driver).until(
        lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == state
    )


def network(driver, up: bool) -> None:
    """Take the page's network down or up (DevTools' offline switch)."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": not up, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def test_online_now_recovery_and_a_restart(demo, browsers):
    ada, grace = browsers(), browsers()
    for driver, name in ((ada, "ada"), (grace, "grace")):
        sign_in(driver, demo.url, name)
        enter_room(driver, "live")
    wait_online(ada, ["ada", "grace"])
    wait_online(grace, ["ada", "grace"])

    say(ada, "hello grace")
    wait_for_message(grace, "ada hello grace")

    # Grace's network drops; Ada talks on; Grace comes back and gets it all, once, in order.
    network(grace, up=False)
    wait_state(grace, "closed")
    wait_online(ada, ["ada"])
    say(ada, "are you there?")
    say(ada, "I'll wait")
    wait_for_message(ada, "ada I'll wait")
    network(grace, up=True)
    wait_for_message(grace, "ada I'll wait")
    expected = ["ada hello grace", "ada are you there?", "ada I'll wait"]
    assert messages(grace) == expected
    wait_online(ada, ["ada", "grace"])
    wait_online(grace, ["ada", "grace"])

    # The server stops and starts again: both pages reconnect by themselves. The memory
    # layer's history went with the process, so each page reloads the room as it is stored.
    demo.stop()
    wait_state(ada, "closed")
    wait_state(grace, "closed")
    demo.start()
    wait_state(ada, "open")
    wait_state(grace, "open")
    wait_online(ada, ["ada", "grace"])
    wait_online(grace, ["ada", "grace"])
    assert wait_for_message(ada, expected[-1]) == expected
    assert wait_for_message(grace, expected[-1]) == expected
    say(grace, "back again")
    assert wait_for_message(ada, "grace back again") == [*expected, "grace back again"]
    assert wait_for_message(grace, "grace back again") == [*expected, "grace back again"]
