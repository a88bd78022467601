"""channels-memory: the in-process channel layer, Channels' embedded default."""

from __future__ import annotations

from .layer import InMemoryChannelLayer

__all__ = ["InMemoryChannelLayer"]
