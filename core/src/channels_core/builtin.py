"""The kernel's own plugin: registered through the ``channels`` entry point like any other."""

from __future__ import annotations

from .plugins import hookimpl


@hookimpl
def channels_register_consumers(register) -> None:
    """The generic consumer classes and decorators of the kernel."""
    from .consumers import AsyncConsumer, BaseConsumer
    from .sessions import channel_and_http_session, channel_session, http_session, http_session_user

    register("BaseConsumer", BaseConsumer)
    register("AsyncConsumer", AsyncConsumer)
    register("channel_session", channel_session)
    register("http_session", http_session)
    register("http_session_user", http_session_user)
    register("channel_and_http_session", channel_and_http_session)


@hookimpl
def channels_add_commands(cli) -> None:
    """``channels worker``, ``serve``, ``stats`` and ``delay``; ``plugins`` and ``hooks`` are
    built in."""
    from .cli import add_kernel_commands

    add_kernel_commands(cli)
