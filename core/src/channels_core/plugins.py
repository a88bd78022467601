"""The plugin manager: entry points of the group ``channels``, loaded on first use.

:func:`get_plugin_manager` builds a :class:`pluggy.PluginManager` with the hook specifications
and every installed plugin that is not blocked; :func:`get_registry` runs the registration
hooks once and keeps what they registered (layers, protocols, consumers, channels).
Nothing is loaded at import time.

Block plugins by entry-point name with ``CHANNELS["PLUGINS_BLOCK"]`` or the environment
variable ``CHANNELS_PLUGINS_BLOCK`` (comma-separated). Set ``CHANNELS_TRACE_HOOKS=1`` to log
every hook call at DEBUG level on the ``channels_core.plugins`` logger.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .exceptions import PluginError
from .options import check_options
from .protocols import ChannelSpec, ProtocolSpec

if TYPE_CHECKING:
    from .settings import ChannelsSettings

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "channels"
BLOCK_ENV = "CHANNELS_PLUGINS_BLOCK"
TRACE_ENV = "CHANNELS_TRACE_HOOKS"

hookimpl = pluggy.HookimplMarker("channels")

# The protocols served without CHANNELS["PROTOCOLS"], when installed; the others are enabled
# by name, so that installing a plugin never opens a port by itself.
DEFAULT_PROTOCOLS = ("http", "websocket")
ENABLE_HINT = "CHANNELS['PROTOCOLS'] or channels serve --protocol NAME"

# The distribution that provides each first-party plugin, for "install X" errors.
KNOWN_DISTRIBUTIONS = {
    "http": "channels-http",
    "websocket": "channels-ws",
    "webrtc": "channels-webrtc",
    "udp": "channels-udp",
    "sms": "channels-sms",
    "metrics": "channels-metrics",
    "memory": "channels-memory",
    "ipc": "channels-ipc",
    "redis": "channels-redis",
}


@dataclass
class PluginInfo:
    """One loaded plugin: where it came from and what it did."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for ``channels plugins --json``."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "hooks": list(self.hooks),
            "registered": {kind: list(names) for kind, names in self.registered.items()},
        }


@dataclass
class PluginFailure:
    """An entry point that could not be imported."""

    name: str
    distribution: str | None
    version: str | None
    error: BaseException

    def describe(self) -> str:
        """One sentence for the log and for ``channels plugins``."""
        dist = f" from {self.distribution} {self.version}" if self.distribution else ""
        return (
            f"Plugin {self.name!r}{dist} failed to import: "
            f"{type(self.error).__name__}: {self.error}"
        )


@dataclass
class Registered:
    """One registered thing and the plugin that registered it."""

    name: str
    obj: Any
    plugin: str


def blocked_plugins(settings_block: Iterable[str] = ()) -> set[str]:
    """Entry-point names blocked by settings and by ``CHANNELS_PLUGINS_BLOCK``."""
    from_env = os.environ.get(BLOCK_ENV, "")
    names = {name.strip() for name in from_env.split(",") if name.strip()}
    names.update(settings_block)
    return names


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def get_plugin_manager(
    block: Iterable[str] = (), required: Iterable[str] = ()
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo], list[PluginFailure]]:
    """Build a plugin manager with every installed, unblocked plugin loaded.

    :param block: entry-point names to skip, on top of ``CHANNELS_PLUGINS_BLOCK``.
    :param required: entry-point names that must load; a failure to import one of these is
        raised as :class:`PluginError` instead of logged.
    :returns: the manager, the loaded plugins' :class:`PluginInfo` by name, and the
        :class:`PluginFailure` of each plugin that failed to import.
    """
    manager = pluggy.PluginManager("channels")
    manager.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV):
        manager.trace.root.setwriter(logger.debug)
        manager.enable_tracing()
    required = set(required)
    infos: dict[str, PluginInfo] = {}
    failures: list[PluginFailure] = []
    for name in blocked_plugins(block):
        manager.set_blocked(name)
    for entry_point in _entry_points():
        name = entry_point.name
        dist = entry_point.dist
        dist_name = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        if manager.is_blocked(name):
            logger.info("Plugin %r (%s) is blocked; not loading it.", name, dist_name)
            continue
        if name in infos:
            raise PluginError(
                f"Two installed distributions declare the channels plugin {name!r}: "
                f"{infos[name].distribution} and {dist_name}. Uninstall one of them."
            )
        try:
            plugin = entry_point.load()
        except Exception as error:
            failure = PluginFailure(name, dist_name, version, error)
            if name in required:
                raise PluginError(
                    failure.describe() + ". It is enabled in your settings: fix or reinstall "
                    f"{dist_name or 'its distribution'}, or remove it from the settings."
                ) from error
            logger.error("%s; the other plugins still load.", failure.describe())
            failures.append(failure)
            continue
        manager.register(plugin, name=name)
        infos[name] = PluginInfo(
            name=name,
            distribution=dist_name,
            version=version,
            module=entry_point.value,
            hooks=sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()),
        )
    manager.check_pending()
    return manager, infos, failures


class Registry:
    """What the plugins registered, by kind, built once per process by :func:`get_registry`."""

    KINDS = ("layers", "protocols", "consumers", "channels")

    def __init__(
        self,
        manager: pluggy.PluginManager,
        infos: dict[str, PluginInfo],
        failures: list[PluginFailure],
    ) -> None:
        self.manager = manager
        self.plugins = infos
        self.failures = failures
        self.layers: dict[str, Registered] = {}
        self.protocols: dict[str, Registered] = {}
        self.consumers: dict[str, Registered] = {}
        self.channels: dict[str, Registered] = {}
        self._collect()

    @classmethod
    def from_plugins(cls, plugins: dict[str, object]) -> Registry:
        """A registry of the given plugin objects by name, without entry points.

        For testing a plugin before it is packaged: ``Registry.from_plugins({"mine": module})``.
        """
        manager = pluggy.PluginManager("channels")
        manager.add_hookspecs(hookspecs)
        infos = {}
        for name, plugin in plugins.items():
            manager.register(plugin, name=name)
            infos[name] = PluginInfo(
                name=name,
                distribution=None,
                version=None,
                module=getattr(plugin, "__name__", type(plugin).__name__),
                hooks=sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()),
            )
        manager.check_pending()
        return cls(manager, infos, [])

    def _add(self, kind: str, name: str, obj: Any, plugin: str) -> None:
        table: dict[str, Registered] = getattr(self, kind)
        if name in table:
            first = table[name].plugin
            raise PluginError(
                f"The {kind[:-1]} {name!r} is registered twice: by plugin {first!r} "
                f"({self._dist(first)}) and by plugin {plugin!r} ({self._dist(plugin)}). "
                "Uninstall or block one of them (CHANNELS_PLUGINS_BLOCK)."
            )
        table[name] = Registered(name, obj, plugin)
        self.plugins[plugin].registered.setdefault(kind, []).append(name)

    def _dist(self, plugin: str) -> str:
        info = self.plugins.get(plugin)
        return f"{info.distribution} {info.version}" if info and info.distribution else "?"

    def call_per_plugin(self, hook_name: str, make_register, argname: str = "register") -> None:
        """Call a registration hook once per implementing plugin, so each call is attributed.

        ``make_register(plugin_name)`` builds the hook's argument *argname* for that plugin.
        """
        caller = getattr(self.manager.hook, hook_name)
        for impl in caller.get_hookimpls():
            plugin_name = impl.plugin_name
            others = [
                plugin
                for name, plugin in self.manager.list_name_plugin()
                if name != plugin_name and plugin is not None
            ]
            subset = self.manager.subset_hook_caller(hook_name, remove_plugins=others)
            subset(**{argname: make_register(plugin_name)})

    def _collect(self) -> None:
        def layers(plugin: str):
            def register(name: str, layer_class: type) -> None:
                from .layers import BaseChannelLayer

                if not (
                    isinstance(layer_class, type) and issubclass(layer_class, BaseChannelLayer)
                ):
                    raise PluginError(
                        f"Plugin {plugin!r} registered layer {name!r} as {layer_class!r}, which "
                        "is not a BaseChannelLayer subclass."
                    )
                self._add("layers", name, layer_class, plugin)

            return register

        def protocols(plugin: str):
            def register(spec: ProtocolSpec) -> None:
                if not isinstance(spec, ProtocolSpec):
                    raise PluginError(
                        f"Plugin {plugin!r} registered protocol {spec!r}, which is not a "
                        "channels_core.protocols.ProtocolSpec."
                    )
                self._add("protocols", spec.name, spec, plugin)

            return register

        def consumers(plugin: str):
            def register(name: str, obj: Any) -> None:
                if not callable(obj):
                    raise PluginError(
                        f"Plugin {plugin!r} registered consumer {name!r} as {obj!r}, which is "
                        "not a class or a decorator."
                    )
                self._add("consumers", name, obj, plugin)

            return register

        def channels(plugin: str):
            def register(spec: ChannelSpec) -> None:
                if not isinstance(spec, ChannelSpec):
                    raise PluginError(
                        f"Plugin {plugin!r} registered channel {spec!r}, which is not a "
                        "channels_core.protocols.ChannelSpec."
                    )
                self._add("channels", spec.name, spec, plugin)

            return register

        self.call_per_plugin("channels_register_layers", layers)
        self.call_per_plugin("channels_register_protocols", protocols)
        self.call_per_plugin("channels_register_consumers", consumers)
        self.call_per_plugin("channels_register_channels", channels)

    @property
    def hook(self) -> Any:
        """The manager's hook relay, for the lifecycle hooks."""
        return self.manager.hook

    def distribution_for(self, name: str) -> str:
        """The distribution to install for a protocol or layer that is not registered."""
        return KNOWN_DISTRIBUTIONS.get(name, f"the distribution that provides {name!r}")

    def default_protocols(self) -> list[str]:
        """What is served without ``CHANNELS["PROTOCOLS"]``: those of
        :data:`DEFAULT_PROTOCOLS` that are installed, with what they require."""
        names = [name for name in DEFAULT_PROTOCOLS if name in self.protocols]
        return [
            name
            for name in names
            if all(required in names for required in self.protocols[name].obj.requires)
        ]

    def enabled_protocols(self, enabled: Iterable[str] | None = None) -> list[ProtocolSpec]:
        """The protocols to serve: *enabled* by name, or :meth:`default_protocols` when None.

        Raises :class:`PluginError` naming the distribution to install for a protocol that is
        not installed, and for a protocol whose ``requires`` are not enabled with it.
        """
        names = self.default_protocols() if enabled is None else list(dict.fromkeys(enabled))
        for name in names:
            if name not in self.protocols:
                installed = sorted(self.protocols) or "none"
                raise PluginError(
                    f"CHANNELS['PROTOCOLS'] enables {name!r}, which is not installed: "
                    f"pip install {self.distribution_for(name)} (installed protocols: "
                    f"{installed})."
                )
        specs = [self.protocols[name].obj for name in names]
        for spec in specs:
            for required in spec.requires:
                if required not in names:
                    raise PluginError(
                        f"Protocol {spec.name!r} requires {required!r}, which is not enabled: "
                        f"add {required!r} to CHANNELS['PROTOCOLS']."
                    )
        return specs

    def check_options(self, settings: ChannelsSettings) -> None:
        """Check ``CHANNELS["OPTIONS"]`` of every registered protocol against its declared
        options; raise :class:`~channels_core.exceptions.ImproperlyConfigured` for a bad one."""
        for name, registered in self.protocols.items():
            check_options(name, registered.obj.options, settings.protocol_options(name))

    def hooks_table(self) -> dict[str, list[str]]:
        """Each hook specification and the plugins implementing it, for ``channels hooks``."""
        table = {}
        for name in sorted(dir(self.manager.hook)):
            if name.startswith("channels_"):
                impls = getattr(self.manager.hook, name).get_hookimpls()
                table[name] = [impl.plugin_name for impl in impls]
        return table


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process's :class:`Registry`, built on first use.

    Loads every plugin not blocked by ``CHANNELS["PLUGINS_BLOCK"]`` or
    ``CHANNELS_PLUGINS_BLOCK``; a plugin the settings name (an enabled protocol, a layer
    backend) must load. Then checks ``CHANNELS["OPTIONS"]`` against the protocols' declared
    options and calls ``channels_configure`` once with the settings.
    """
    global _registry
    with _registry_lock:
        if _registry is None:
            from .settings import get_settings

            settings = get_settings()
            registry = Registry(
                *get_plugin_manager(
                    block=settings.plugins_block, required=settings.required_plugins
                )
            )
            registry.check_options(settings)
            registry.hook.channels_configure(settings=settings)
            _registry = registry
        return _registry


def reset_registry() -> None:
    """Forget the process's registry, so the next :func:`get_registry` loads plugins again."""
    global _registry
    with _registry_lock:
        _registry = None
