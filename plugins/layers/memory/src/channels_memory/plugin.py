"""Registers the ``memory`` layer through the ``channels`` entry point."""

from __future__ import annotations

from channels_core import hookimpl


@hookimpl
def channels_register_layers(register) -> None:
    """The in-process layer, as ``BACKEND: "memory"``."""
    from .layer import InMemoryChannelLayer

    register("memory", InMemoryChannelLayer)
