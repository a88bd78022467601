"""channels-ipc: a channel layer shared by the processes of one machine, with no server."""

from __future__ import annotations

from .layer import IPCChannelLayer

__all__ = ["IPCChannelLayer"]
