"""Registers the ``redis`` layer through the ``channels`` entry point."""

from __future__ import annotations

from channels_core import hookimpl


@hookimpl
def channels_register_layers(register) -> None:
    """The Redis layer, as ``BACKEND: "redis"``."""
    from .layer import RedisChannelLayer

    register("redis", RedisChannelLayer)
