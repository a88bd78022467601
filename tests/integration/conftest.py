"""The chat demo's browser tests share their page helpers (chat_pages); the browsers come from
tests/conftest.py."""

from __future__ import annotations

import sys
from pathlib import Path

# The test modules import chat_pages from beside them (pytest runs in importlib mode).
sys.path.insert(0, str(Path(__file__).resolve().parent))
