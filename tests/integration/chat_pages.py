"""Driving the chat demo's pages in a browser: sign in, enter a room, say, read messages.
Shared by the chat demo's browser tests over HTTP/1.1 and over HTTP/2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chat"
WAIT = 20


def sign_in(driver: Any, base: str, name: str) -> None:
    """Sign in through the demo's sign-in page and land on the list of rooms."""
    driver.get(f"{base}/sign-in/")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.CSS_SELECTOR, "form.line button").click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.ID, "me"))
    assert driver.find_element(By.ID, "me").text == name


def enter_room(driver: Any, room: str) -> None:
    """Enter *room* through the rooms form, then wait for its WebSocket to be open (failing
    with the browser's console when it does not, for a browser that keeps it)."""
    field = driver.find_element(By.ID, "room-name")
    field.send_keys(room)
    field.submit()
    try:
        WebDriverWait(driver, WAIT).until(
            lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "open"
        )
    except TimeoutException:
        try:
            console = driver.get_log("browser")
        except Exception:  # a browser started without logs
            console = "(not kept)"
        raise AssertionError(
            f"The WebSocket of room {room!r} did not open within {WAIT} s. "
            f"Browser console: {console}"
        ) from None


def say(driver: Any, text: str) -> None:
    """Type *text* into the room's box and send it."""
    field = driver.find_element(By.ID, "text")
    field.send_keys(text)
    field.submit()


def messages(driver: Any) -> list[str]:
    """The room's messages as shown, ``"author text"``."""
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#messages li")]


def wait(driver: Any) -> WebDriverWait:
    """A wait of WAIT seconds that reads again an element a page reload made stale (the
    room's page reloads itself after a gap in what it recovered)."""
    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,))


def wait_for_message(driver: Any, shown: str) -> list[str]:
    """Wait until *shown* is the last message on the page; return them all."""
    seen: list[list[str]] = []

    def shows(d: Any) -> bool:
        seen.append(messages(d))
        return seen[-1][-1:] == [shown]

    wait(driver).until(shows)
    return seen[-1]
