"""The kernel's own plugin: registered through the ``channels`` entry point like any other."""

from __future__ import annotations

from .plugins import hookimpl


@hookimpl
def channels_register_consumers(register) -> None:
    """The generic consumer classes and decorators of the kernel."""
    from .consumers import AsyncConsumer, BaseConsumer
    from .sessions import channel_session

    register("BaseConsumer", BaseConsumer)
    register("AsyncConsumer", AsyncConsumer)
    register("channel_session", channel_session)


@hookimpl
def channels_add_commands(cli) -> None:
    """``channels worker`` and ``channels serve``; ``plugins`` and ``hooks`` are built in."""
    from .cli import add_kernel_commands

    add_kernel_commands(cli)
