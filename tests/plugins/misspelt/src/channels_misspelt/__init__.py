"""A plugin with a misspelt hook implementation (channels_register_layer, no "s")."""

from channels_core import hookimpl


@hookimpl
def channels_register_layer(register) -> None:
    """Never called: check_pending() rejects the unknown hook name."""
