"""Channels' settings, read from Django's ``CHANNEL_LAYERS`` and ``CHANNELS``.

Every check happens here, at start-up, and fails with one sentence naming the key, the value
and the fix. Without Django settings (``channels plugins`` run bare) the defaults apply: one
``"default"`` layer on the in-process ``memory`` backend, the ``http`` and ``websocket``
protocols enabled when installed (any other protocol is enabled by name), in-process mode.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from .exceptions import ImproperlyConfigured
from .limits import OutageLimits, WriteLimits

MODES = ("inprocess", "worker")
# The connections the kernel queues for a stream listener before the server accepts them:
# uvicorn's and Gunicorn's default (Twisted's own, 50, drops the SYNs of a burst). The kernel
# caps it at net.core.somaxconn.
DEFAULT_BACKLOG = 2048
CHANNELS_KEYS = {
    "PROTOCOLS": "the protocols to enable, by name (default: http and websocket, if installed)",
    "MODE": "'inprocess' (default) or 'worker'",
    "PLUGINS_BLOCK": "plugin entry-point names never to load",
    "OPTIONS": "per-protocol options: {protocol: {option: value}}",
    "SESSION_ENGINE": "the Django session engine for channel sessions (default: SESSION_ENGINE)",
    "BACKLOG": "the listen backlog of every stream listener without backlog= (default 2048)",
    "PROCESSES": "how many serving processes channels serve runs: 1 (default), N, or 'auto'",
    "REUSE_PORT": "with several processes, a SO_REUSEPORT socket per process (default False)",
    "WRITE_BUFFER": "each connection's unsent bytes: {'high_water', 'limit', 'timeout'}",
    "LAYER_OUTAGE": "sends held while the layer is unreachable: {'timeout', 'buffer'}",
}
LAYER_KEYS = {
    "BACKEND": "a registered layer name such as 'memory', or a dotted path to a layer class",
    "ROUTING": "the dotted path of the routing list, such as 'my_project.routing.routes'",
    "CONFIG": "keyword arguments for the layer",
    "TEST_CONFIG": "keyword arguments for the layer under Channels' test cases",
}
DEFAULT_LAYERS = {"default": {"BACKEND": "memory"}}
# What a command that needs a routing says when there are no Django settings at all.
NO_SETTINGS_MODULE = (
    "No Django settings module was given, so there is no routing to run: set "
    "DJANGO_SETTINGS_MODULE or pass --settings my_project.settings (and --pythonpath with the "
    "project's directory)."
)


@dataclass(frozen=True)
class LayerSettings:
    """One alias of ``CHANNEL_LAYERS``."""

    alias: str
    backend: str
    routing: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    test_config: dict[str, Any] | None = None


@dataclass(frozen=True)
class ChannelsSettings:
    """The checked contents of ``CHANNEL_LAYERS`` and ``CHANNELS``.

    ``from_django`` is False when there are no Django settings (no ``DJANGO_SETTINGS_MODULE``,
    nothing configured), so the defaults apply: errors then say to name a settings module.
    """

    layers: dict[str, LayerSettings]
    protocols: tuple[str, ...] | None = None
    mode: str = "inprocess"
    #: True when ``CHANNELS["MODE"]`` is set, so the mode was chosen, not defaulted.
    mode_is_set: bool = False
    plugins_block: tuple[str, ...] = ()
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_engine: str | None = None
    backlog: int = DEFAULT_BACKLOG
    processes: int | str = 1
    reuse_port: bool = False
    write_buffer: WriteLimits = field(default_factory=WriteLimits)
    #: ``CHANNELS["LAYER_OUTAGE"]``, checked.
    layer_outage: OutageLimits = field(default_factory=OutageLimits)
    from_django: bool = True

    def layer(self, alias: str) -> LayerSettings:
        """The settings of one layer alias, or a clear error listing the configured ones."""
        try:
            return self.layers[alias]
        except KeyError:
            raise ImproperlyConfigured(
                f"CHANNEL_LAYERS has no alias {alias!r}; the configured aliases are "
                f"{sorted(self.layers)}. Add it to CHANNEL_LAYERS or pick one of those."
            ) from None

    def protocol_options(self, protocol: str) -> dict[str, Any]:
        """``CHANNELS["OPTIONS"][protocol]``, or an empty dict."""
        return dict(self.options.get(protocol, {}))

    @property
    def required_plugins(self) -> set[str]:
        """Plugins the settings name explicitly: these must load, or start-up fails."""
        names = set(self.protocols or ())
        names.update(layer.backend for layer in self.layers.values() if "." not in layer.backend)
        return names


def _check_str_list(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ImproperlyConfigured(
            f"{key} is {value!r}; it must be a list of names, such as ['http', 'websocket']."
        )
    for item in value:
        if not isinstance(item, str):
            raise ImproperlyConfigured(f"{key} holds {item!r}, which is not a str name.")
    return tuple(value)


def _parse_layers(raw: object) -> dict[str, LayerSettings]:
    if not isinstance(raw, dict) or not raw:
        raise ImproperlyConfigured(
            f"CHANNEL_LAYERS is {raw!r}; it must be a non-empty dict of aliases, such as "
            "{'default': {'BACKEND': 'memory'}}."
        )
    layers = {}
    for alias, entry in raw.items():
        where = f"CHANNEL_LAYERS[{alias!r}]"
        if not isinstance(entry, dict):
            raise ImproperlyConfigured(
                f"{where} is {entry!r}; it must be a dict such as {{'BACKEND': 'memory'}}."
            )
        for key in entry:
            if key not in LAYER_KEYS:
                raise ImproperlyConfigured(
                    f"{where} has the unknown key {key!r}; the keys are {sorted(LAYER_KEYS)}."
                )
        backend = entry.get("BACKEND")
        if not isinstance(backend, str) or not backend:
            raise ImproperlyConfigured(
                f"{where}['BACKEND'] is {backend!r}; set it to {LAYER_KEYS['BACKEND']}."
            )
        routing = entry.get("ROUTING")
        if routing is not None and not isinstance(routing, (str, list, tuple)):
            raise ImproperlyConfigured(
                f"{where}['ROUTING'] is {routing!r}; set it to {LAYER_KEYS['ROUTING']}."
            )
        for key in ("CONFIG", "TEST_CONFIG"):
            value = entry.get(key)
            if value is not None and not isinstance(value, dict):
                raise ImproperlyConfigured(
                    f"{where}[{key!r}] is {value!r}; it must be a dict of keyword arguments."
                )
        layers[alias] = LayerSettings(
            alias=alias,
            backend=backend,
            routing=routing,
            config=dict(entry.get("CONFIG") or {}),
            test_config=entry.get("TEST_CONFIG"),
        )
    return layers


def parse_settings(channel_layers: object = None, channels: object = None) -> ChannelsSettings:
    """Check raw ``CHANNEL_LAYERS`` and ``CHANNELS`` values; raise ImproperlyConfigured."""
    layers = _parse_layers(DEFAULT_LAYERS if channel_layers is None else channel_layers)
    channels = {} if channels is None else channels
    if not isinstance(channels, dict):
        raise ImproperlyConfigured(
            f"CHANNELS is {channels!r}; it must be a dict such as {{'PROTOCOLS': ['http']}}."
        )
    for key in channels:
        if key not in CHANNELS_KEYS:
            raise ImproperlyConfigured(
                f"CHANNELS has the unknown key {key!r}; the keys are {sorted(CHANNELS_KEYS)}."
            )
    protocols = channels.get("PROTOCOLS")
    if protocols is not None:
        protocols = _check_str_list("CHANNELS['PROTOCOLS']", protocols)
    mode = channels.get("MODE", "inprocess")
    if mode not in MODES:
        raise ImproperlyConfigured(
            f"CHANNELS['MODE'] is {mode!r}; set it to 'inprocess' (the protocol server runs "
            "the consumers) or 'worker' (channels worker processes run them)."
        )
    block = _check_str_list("CHANNELS['PLUGINS_BLOCK']", channels.get("PLUGINS_BLOCK", []))
    options = channels.get("OPTIONS", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise ImproperlyConfigured(
            f"CHANNELS['OPTIONS'] is {options!r}; it must map protocol names to dicts of "
            "options, such as {'udp': {'max_datagram_size': 1200}}."
        )
    backlog = channels.get("BACKLOG", DEFAULT_BACKLOG)
    if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 1:
        raise ImproperlyConfigured(
            f"CHANNELS['BACKLOG'] is {backlog!r}; set it to a whole number of 1 or more, the "
            f"connections a listener queues before the server accepts them (default "
            f"{DEFAULT_BACKLOG})."
        )
    processes = channels.get("PROCESSES", 1)
    if processes != "auto":
        from .supervisor import process_count

        process_count(processes, "CHANNELS['PROCESSES']")
    reuse_port = channels.get("REUSE_PORT", False)
    if not isinstance(reuse_port, bool):
        raise ImproperlyConfigured(
            f"CHANNELS['REUSE_PORT'] is {reuse_port!r}; set it to True (a SO_REUSEPORT "
            "socket per process) or False (one socket the processes share, the default)."
        )
    write_buffer = WriteLimits.from_setting(channels.get("WRITE_BUFFER"))
    layer_outage = OutageLimits.from_setting(channels.get("LAYER_OUTAGE"))
    engine = channels.get("SESSION_ENGINE")
    if engine is not None and not isinstance(engine, str):
        raise ImproperlyConfigured(
            f"CHANNELS['SESSION_ENGINE'] is {engine!r}; set it to a session engine module "
            "path such as 'django.contrib.sessions.backends.cache'."
        )
    return ChannelsSettings(
        layers=layers,
        protocols=protocols,
        mode=mode,
        mode_is_set="MODE" in channels,
        plugins_block=block,
        options={name: dict(values) for name, values in options.items()},
        session_engine=engine,
        backlog=backlog,
        processes=processes,
        reuse_port=reuse_port,
        write_buffer=write_buffer,
        layer_outage=layer_outage,
    )


_settings: ChannelsSettings | None = None
_lock = threading.Lock()


def get_settings() -> ChannelsSettings:
    """The process's settings, read from Django once (defaults when Django is unconfigured)."""
    global _settings
    with _lock:
        if _settings is None:
            from django.conf import settings as django_settings

            if django_settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE"):
                _settings = parse_settings(
                    getattr(django_settings, "CHANNEL_LAYERS", None),
                    getattr(django_settings, "CHANNELS", None),
                )
            else:
                _settings = replace(parse_settings(), from_django=False)
        return _settings


def reset_settings() -> None:
    """Forget the cached settings (Django's ``setting_changed`` signal calls this)."""
    global _settings
    with _lock:
        _settings = None
