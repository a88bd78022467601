"""Headless Chromium for browser tests: Debian's ``chromium`` and ``chromedriver`` through
Selenium, kept on loopback (every host name but 127.0.0.1 fails to resolve, anything not on
loopback goes to a proxy that is not there, and the background services are off).

Selenium is imported when a browser starts, so importing this module needs nothing more.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from typing import Any

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
#: The reason to skip a browser test on a machine without them.
MISSING = (
    "Debian's chromium and chromium-driver are not installed "
    "(apt-get install chromium chromium-driver; .ci/run does it)"
)
LOOPBACK_ONLY = (
    "--headless=new",
    "--no-sandbox",  # tests run as root
    "--disable-dev-shm-usage",
    "--window-size=900,640",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",  # loopback bypasses proxies; nothing else does
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-first-run",
    "--no-pings",
)


def available() -> bool:
    """Whether Chromium and its chromedriver are installed."""
    return CHROMIUM is not None and CHROMEDRIVER is not None


def headless_chromium(
    arguments: Iterable[str] = (), logs: bool = False, page_load_timeout: float = 20
) -> Any:
    """A new headless Chromium session (a ``selenium.webdriver.Chrome``) with its own
    profile, on loopback only, plus *arguments*; with *logs*, its console and network events
    are kept for ``driver.get_log("browser")`` and ``driver.get_log("performance")``. The
    caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*LOOPBACK_ONLY, *arguments):
        options.add_argument(argument)
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(page_load_timeout)
    return driver
