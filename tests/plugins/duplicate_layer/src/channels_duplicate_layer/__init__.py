"""A plugin that registers a layer under a name the memory plugin already took."""

from channels_core import hookimpl


@hookimpl
def channels_register_layers(register) -> None:
    """Registers "memory" a second time."""
    from channels_memory.layer import InMemoryChannelLayer

    register("memory", InMemoryChannelLayer)
