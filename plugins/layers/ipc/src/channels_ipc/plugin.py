"""Registers the ``ipc`` layer through the ``channels`` entry point."""

from __future__ import annotations

from channels_core import hookimpl


@hookimpl
def channels_register_layers(register) -> None:
    """The cross-process layer of one machine, as ``BACKEND: "ipc"``."""
    from .layer import IPCChannelLayer

    register("ipc", IPCChannelLayer)
