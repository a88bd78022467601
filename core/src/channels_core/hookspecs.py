"""The hook specifications of Channels: the whole contract between the kernel and plugins.

Every hook is named ``channels_*``. A plugin is a module (or object) that implements some of
them with :data:`channels_core.hookimpl` and is declared as an entry point of the group
``channels`` in its distribution::

    [project.entry-points.channels]
    udp = "channels_udp.plugin"

The kernel's own pieces register through the very same entry points. No hook runs per
message: hooks configure and register; the per-message path is plain dispatch by channel name.

Registration hooks follow one shape: the kernel passes a ``register`` callable and the plugin
calls it once per thing it provides. The kernel validates each call and rejects a name that
another plugin already registered, naming both plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from .cli import CommandRegistry
    from .settings import ChannelsSettings

hookspec = pluggy.HookspecMarker("channels")

# --------------------------------------------------------------------------------------------
# Configure
# --------------------------------------------------------------------------------------------


@hookspec
def channels_configure(settings: ChannelsSettings) -> None:
    """Check what the option declarations cannot, before anything is started.

    :param settings: the :class:`~channels_core.settings.ChannelsSettings` read from Django's
        ``CHANNELS`` and ``CHANNEL_LAYERS`` (or their defaults). The kernel has already
        checked every protocol's ``CHANNELS["OPTIONS"]`` against its declared
        :class:`~channels_core.options.Option` s (type, bounds, choices, validator), so this
        hook is for what spans several settings; raise
        :class:`~channels_core.exceptions.ImproperlyConfigured` with one sentence naming the
        key, the value and the fix.
    :returns: nothing.

    Called once per process, by :func:`~channels_core.plugins.get_registry` the first time
    it builds the registry (``channels serve``, ``channels worker``, ``get_channel_layer()``):
    after every plugin has loaded, the registration hooks have run and the declared options
    in the settings have been checked. Command-line option values are checked later, the
    same way, when ``channels serve`` resolves them; they do not reach this hook.

    Since 0.1.
    """


# --------------------------------------------------------------------------------------------
# Register
# --------------------------------------------------------------------------------------------


@hookspec
def channels_register_layers(register: Callable[[str, type], None]) -> None:
    """Register channel layer classes under short names.

    :param register: call ``register(name, layer_class)`` once per layer. ``name`` is what
        ``CHANNEL_LAYERS[alias]["BACKEND"]`` names (``"memory"``, ``"redis"``);
        ``layer_class`` subclasses :class:`~channels_core.layers.BaseChannelLayer` and is
        built with the alias's ``CONFIG`` as keyword arguments.
    :returns: nothing.

    Called once per process, when the registry is built.

    Since 0.1.
    """


@hookspec
def channels_register_protocols(register: Callable[[Any], None]) -> None:
    """Register protocol servers: the event sources the ``channels serve`` process hosts.

    :param register: call ``register(spec)`` with a
        :class:`~channels_core.protocols.ProtocolSpec`: its ``name`` (what
        ``CHANNELS["PROTOCOLS"]`` enables), the channels it ``emits`` (``"udp.receive"``) and
        ``consumes`` (reply channels such as ``"udp.send!"``), its ``listeners`` factory
        (called with the running :class:`~channels_core.server.ProtocolServer`, the host its
        listeners talk to, and returning stream, datagram, serial, service or task
        listeners), its ``options`` (settings keys and
        command-line flags), and the protocols it ``requires``.
    :returns: nothing.

    Called once per process, when the registry is built.

    Since 0.1.
    """


@hookspec
def channels_register_consumers(register: Callable[[str, Any], None]) -> None:
    """Register generic consumer classes and consumer decorators by name.

    :param register: call ``register(name, obj)`` once per class or decorator, for example
        ``register("WebsocketConsumer", WebsocketConsumer)``. Registered names are listed by
        ``channels plugins`` and can be fetched with
        :func:`channels_core.plugins.get_registry().consumers`.
    :returns: nothing.

    Called once per process, when the registry is built.

    Since 0.1.
    """


@hookspec
def channels_register_channels(register: Callable[[Any], None]) -> None:
    """Declare the channels a plugin owns and the message keys they carry.

    :param register: call ``register(spec)`` with a
        :class:`~channels_core.protocols.ChannelSpec`: the channel ``name`` or reply-channel
        prefix (``"websocket.send!"``), who sends it (``"protocol"`` or ``"consumer"``), the
        required and optional message ``keys``, and a one-line description.
    :returns: nothing.

    Called once per process, when the registry is built. ``channels hooks`` and the routing's
    start-up check use the declarations; messages are not checked one by one.

    Since 0.1.
    """


@hookspec
def channels_add_commands(cli: CommandRegistry) -> None:
    """Add sub-commands to the ``channels`` command line (and ``manage.py channels``).

    :param cli: a :class:`~channels_core.cli.CommandRegistry`; call
        ``cli.command(name, help=..., handler=...)`` and add arguments to the
        :class:`argparse.ArgumentParser` it returns. ``handler(args)`` runs the command and
        returns its exit status.
    :returns: nothing.

    Called when the ``channels`` command line is built.

    Since 0.1.
    """


# --------------------------------------------------------------------------------------------
# Start-up and shut-down
# --------------------------------------------------------------------------------------------


@hookspec
def channels_startup(server: Any) -> None:
    """React to a ``channels serve`` or ``channels worker`` process having started.

    :param server: the running :class:`~channels_core.server.ProtocolServer` (``kind ==
        "server"``) or :class:`~channels_core.worker.Worker` (``kind == "worker"``), after
        its listeners or receivers are up. Both carry ``settings``, ``alias``, ``loop`` and
        ``kind``; the server is the :class:`~channels_core.host.Host` its protocols use
        (``emit``, ``spawn``, ``hold``…), for work a plugin starts here.
    :returns: nothing.

    Since 0.1.
    """


@hookspec
def channels_shutdown(server: Any) -> None:
    """React to a ``channels serve`` or ``channels worker`` process shutting down.

    :param server: the same object :func:`channels_startup` received. Called once it has
        stopped accepting new work and finished (or timed out) the work in flight, before
        the layer is closed.
    :returns: nothing.

    Since 0.1.
    """
