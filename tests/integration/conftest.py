"""The browsers of the chat demo's tests, and the page helpers they share (chat_pages)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from channels_core.testing.browser import headless_chromium

# The test modules import chat_pages from beside them (pytest runs in importlib mode).
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def browsers():
    """Start headless Chromium sessions on demand, each with its own profile (its own user):
    ``browsers()``, or ``browsers("--ignore-certificate-errors", logs=True)``."""
    started = []

    def start(*arguments: str, logs: bool = False):
        driver = headless_chromium(arguments, logs=logs)
        started.append(driver)
        return driver

    try:
        yield start
    finally:
        for driver in started:
            driver.quit()
