"""The ``channels`` command line (also ``manage.py channels``).

::

    channels [--settings MODULE] [--pythonpath DIR] [-v {0,1,2,3}] <command> ...

Built in: ``plugins`` and ``hooks`` (both with ``--json``). The kernel plugin adds ``worker``,
``serve`` and ``stats`` through the ``channels_add_commands`` hook, as any plugin adds its own
commands.
``serve`` grows one flag per option each installed protocol declares (``--udp-port``), plus the
generic ``--option PROTOCOL.NAME=VALUE``.

Exit status: 0 on success, 1 for a configuration error (one sentence on stderr, no
traceback), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any

import pluggy

from .exceptions import ImproperlyConfigured, PluginError
from .settings import MODES

if TYPE_CHECKING:
    from .plugins import Registry

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_USAGE = 2
VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}
BUILTIN = "(built in)"
Handler = Callable[[argparse.Namespace], "int | None"]


class CommandRegistry:
    """The sub-commands of ``channels``: what ``channels_add_commands(cli)`` receives.

    ``registry`` is the process's :class:`~channels_core.plugins.Registry`, for commands whose
    arguments depend on what is installed.
    """

    def __init__(
        self,
        subparsers: argparse._SubParsersAction,
        registry: Registry,
        parents: Sequence[argparse.ArgumentParser] = (),
    ) -> None:
        self.registry = registry
        self._subparsers = subparsers
        self._parents = list(parents)
        self.owners: dict[str, str] = {}
        self._plugin = BUILTIN

    def for_plugin(self, plugin: str) -> CommandRegistry:
        """Attribute the next :meth:`command` calls to *plugin* (for duplicate errors)."""
        self._plugin = plugin
        return self

    def command(self, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
        """Add the sub-command *name*; ``handler(args)`` runs it and returns its exit status.

        Returns the sub-command's :class:`argparse.ArgumentParser` to add arguments to.
        Raises :class:`PluginError` when another plugin already added *name*.
        """
        if name in self.owners:
            raise PluginError(
                f"The command {name!r} is registered twice: by plugin {self.owners[name]!r} and "
                f"by plugin {self._plugin!r}. Uninstall or block one of them "
                "(CHANNELS_PLUGINS_BLOCK)."
            )
        parser = self._subparsers.add_parser(
            name, help=help, description=help, parents=self._parents, allow_abbrev=False
        )
        parser.set_defaults(handler=handler)
        self.owners[name] = self._plugin
        return parser


# Global options --------------------------------------------------------------------------


def _add_global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """``--settings``, ``--pythonpath`` and ``-v``, on the main parser and every command."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--settings",
        default=default,
        metavar="MODULE",
        help="The Django settings module (sets DJANGO_SETTINGS_MODULE).",
    )
    parser.add_argument(
        "--pythonpath",
        default=default,
        metavar="DIR",
        help="A directory to add to the Python path, such as the project's root.",
    )
    parser.add_argument(
        "-v",
        "--verbosity",
        type=int,
        choices=sorted(VERBOSITY_LEVELS),
        default=argparse.SUPPRESS if suppress else 1,
        help="0 warnings only, 1 normal (default), 2 and 3 debug.",
    )


def setup_django(settings: str | None, pythonpath: str | None) -> None:
    """Put *pythonpath* on the path, then set up Django when a settings module is named."""
    if pythonpath:
        sys.path.insert(0, os.path.abspath(pythonpath))
    if settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings
    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if not module:
        return
    import django
    from django.core.exceptions import ImproperlyConfigured as DjangoImproperlyConfigured

    try:
        django.setup()
    except ImportError as error:
        raise ImproperlyConfigured(
            f"The Django settings module {module!r} cannot be imported ({error}); fix --settings "
            "or DJANGO_SETTINGS_MODULE, and add the project directory with --pythonpath."
        ) from error
    except DjangoImproperlyConfigured as error:
        raise ImproperlyConfigured(f"Django is improperly configured: {error}") from error


def configure_logging(verbosity: int) -> None:
    """Log to stderr at the level *verbosity* asks for, unless the project set up logging."""
    logging.basicConfig(
        level=VERBOSITY_LEVELS.get(verbosity, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Twisted logs every factory start and port close at INFO: noise unless debugging.
    logging.getLogger("twisted").setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


# plugins and hooks -----------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Rows as left-aligned columns under *headers*."""
    rows = [list(map(str, row)) for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [[*headers], ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _blocked(registry: Registry) -> list[dict[str, Any]]:
    from .plugins import ENTRY_POINT_GROUP, blocked_plugins
    from .settings import get_settings

    blocked = blocked_plugins(get_settings().plugins_block)
    found = []
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in blocked and entry_point.name not in registry.plugins:
            dist = entry_point.dist
            found.append(
                {
                    "name": entry_point.name,
                    "distribution": dist.metadata["Name"] if dist is not None else None,
                    "version": dist.version if dist is not None else None,
                }
            )
    return sorted(found, key=lambda item: item["name"])


def plugins_report(registry: Registry) -> dict[str, Any]:
    """What ``channels plugins --json`` prints: loaded, failed and blocked plugins."""
    return {
        "plugins": [registry.plugins[name].as_dict() for name in sorted(registry.plugins)],
        "failed": [
            {
                "name": failure.name,
                "distribution": failure.distribution,
                "version": failure.version,
                "error": f"{type(failure.error).__name__}: {failure.error}",
            }
            for failure in registry.failures
        ],
        "blocked": _blocked(registry),
    }


def _short_hook(name: str) -> str:
    return name.removeprefix("channels_")


def _list_plugins(args: argparse.Namespace) -> int:
    from .plugins import get_registry

    report = plugins_report(get_registry())
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    rows = [
        (
            plugin["name"],
            plugin["distribution"] or "-",
            plugin["version"] or "-",
            ", ".join(_short_hook(hook) for hook in plugin["hooks"]) or "-",
            "; ".join(f"{kind}: {', '.join(names)}" for kind, names in plugin["registered"].items())
            or "-",
        )
        for plugin in report["plugins"]
    ]
    print(format_table(("PLUGIN", "DISTRIBUTION", "VERSION", "HOOKS", "REGISTERED"), rows))
    for failure in report["failed"]:
        print(
            f"\nFailed to import {failure['name']!r} from {failure['distribution']} "
            f"{failure['version']}: {failure['error']}"
        )
    for blocked in report["blocked"]:
        print(f"\nBlocked: {blocked['name']!r} from {blocked['distribution']} {blocked['version']}")
    return EXIT_OK


def hooks_report(registry: Registry) -> list[dict[str, Any]]:
    """What ``channels hooks --json`` prints: each hook, its summary and its implementers."""
    from . import hookspecs

    report = []
    for name, plugins in registry.hooks_table().items():
        doc = (getattr(hookspecs, name).__doc__ or "").strip()
        report.append(
            {"name": name, "description": doc.splitlines()[0] if doc else "", "plugins": plugins}
        )
    return report


def _list_hooks(args: argparse.Namespace) -> int:
    from .plugins import get_registry

    report = hooks_report(get_registry())
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    rows = [
        (hook["name"], ", ".join(hook["plugins"]) or "-", hook["description"]) for hook in report
    ]
    print(format_table(("HOOK", "PLUGINS", "DESCRIPTION"), rows))
    return EXIT_OK


# worker, serve and stats (added by the kernel plugin through channels_add_commands) -------


def _run_worker(args: argparse.Namespace) -> int:
    from .worker import run_worker

    return run_worker(
        alias=args.layer,
        only_channels=args.only_channels,
        exclude_channels=args.exclude_channels,
        threads=args.threads,
    )


def stats_report(alias: str, channels: Sequence[str] = ()) -> dict[str, Any]:
    """What ``channels stats --json`` prints: the layer's statistics, then each channel's.

    Raises :class:`ImproperlyConfigured` when the layer keeps no statistics, cannot be
    reached, or a channel name is invalid.
    """
    import asyncio

    from .exceptions import ChannelsError, LayerUnavailable
    from .layers import build_layer

    layer = build_layer(alias)
    backend = type(layer).__name__
    if "statistics" not in layer.extensions:
        raise ImproperlyConfigured(
            f"The layer {alias!r} ({backend}) keeps no statistics; channels stats needs a layer "
            "with the 'statistics' extension, such as redis or ipc."
        )

    async def collect() -> dict[str, Any]:
        try:
            totals = await layer.stats()
            per_channel = {name: await layer.stats(name) for name in channels}
        finally:
            await layer.close()
        return {
            "layer": alias,
            "backend": backend,
            "total": dataclasses.asdict(totals),
            "channels": {name: dataclasses.asdict(found) for name, found in per_channel.items()},
        }

    try:
        return asyncio.run(collect())
    except LayerUnavailable as error:
        raise ImproperlyConfigured(
            f"channels stats: the layer {alias!r} cannot be reached: {error}"
        ) from error
    except ChannelsError as error:
        # An invalid --channel name: the layer's own sentence says what is wrong with it.
        raise ImproperlyConfigured(f"channels stats: {error}") from error


def _format_age(age: float | None) -> str:
    return "-" if age is None else f"{age:.1f}s"


def _layer_stats(args: argparse.Namespace) -> int:
    report = stats_report(args.layer, args.channels)
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_OK
    rows = [
        (
            name,
            found["pending"],
            _format_age(found["oldest_age"]),
            found["full_count"],
            found["dropped"],
        )
        for name, found in [("(all channels)", report["total"]), *report["channels"].items()]
    ]
    print(f"Layer {report['layer']!r} ({report['backend']})")
    headers = ("CHANNEL", "PENDING", "OLDEST", "REFUSED (FULL)", "DROPPED (UNREADABLE)")
    print(format_table(headers, rows))
    return EXIT_OK


def _app_reference(value: str) -> tuple[str, str]:
    module, sep, attr = value.partition(":")
    if not sep or not module or not attr:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not of the form module:attribute; name a channel layer such as "
            "my_project.asgi:channel_layer."
        )
    return module, attr


def serve_target(reference: tuple[str, str]) -> tuple[str | None, Any]:
    """What ``channels serve module:attribute`` names: ``(alias, None)`` for a channel layer
    built from ``CHANNEL_LAYERS``, ``(None, app)`` for an ASGI application (any callable)."""
    from .layers import BaseChannelLayer

    module_name, attr = reference
    where = f"{module_name}:{attr}"
    try:
        obj = getattr(import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ImproperlyConfigured(
            f"channels serve {where}: it cannot be imported ({error}); check the module path "
            "and --pythonpath."
        ) from error
    if not isinstance(obj, BaseChannelLayer):
        if callable(obj):
            return None, obj
        raise ImproperlyConfigured(
            f"channels serve {where}: it is a {type(obj).__name__}, neither a channel layer nor "
            "an ASGI application; name a layer from get_channel_layer(), such as "
            "my_project.asgi:channel_layer, an ASGI application, such as "
            "my_project.asgi:application, or leave it out to serve the 'default' layer."
        )
    if obj.alias is None:
        raise ImproperlyConfigured(
            f"channels serve {where}: the layer was not built from CHANNEL_LAYERS; use "
            "get_channel_layer(alias) so the server knows its routing."
        )
    return obj.alias, None


def _option_dest(protocol: str, name: str) -> str:
    return f"option:{protocol}:{name}"


def _add_protocol_options(parser: argparse.ArgumentParser, registry: Registry) -> None:
    """One flag per declared option of each installed protocol, and ``--option``."""
    owners: dict[str, str] = {}
    for protocol in sorted(registry.protocols):
        spec = registry.protocols[protocol].obj
        group = parser.add_argument_group(f"{protocol} options")
        for option in spec.options:
            for flag in option.flags:
                if flag in owners:
                    raise PluginError(
                        f"The serve flag {flag} is declared twice: by protocol {owners[flag]!r} "
                        f"and by protocol {protocol!r}. Rename one of them."
                    )
                owners[flag] = protocol
            if not option.flags:
                continue
            setting = f"CHANNELS['OPTIONS'][{protocol!r}][{option.name!r}]"
            group.add_argument(
                *option.flags,
                dest=_option_dest(protocol, option.name),
                metavar=option.name.upper(),
                type=option.type,
                action="append" if option.multiple else "store",
                default=argparse.SUPPRESS,
                help=f"{option.help} (setting {setting}; default {option.default!r})",
            )

    def parse_option(value: str) -> tuple[str, str, Any]:
        key, sep, raw = value.partition("=")
        protocol, dot, name = key.partition(".")
        if not sep or not dot:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not of the form PROTOCOL.NAME=VALUE, such as "
                "udp.max_datagram_size=1200."
            )
        if protocol not in registry.protocols:
            raise argparse.ArgumentTypeError(
                f"{value!r} names the protocol {protocol!r}, which is not installed "
                f"(installed: {sorted(registry.protocols)})."
            )
        options = {option.name: option for option in registry.protocols[protocol].obj.options}
        if name not in options:
            raise argparse.ArgumentTypeError(
                f"{value!r} names the option {name!r}, which the protocol {protocol!r} does "
                f"not take (it takes {sorted(options) or 'no options'})."
            )
        try:
            return protocol, name, options[name].type(raw)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{value!r} has a bad value: {error}.") from error

    parser.add_argument(
        "--option",
        dest="generic_options",
        action="append",
        default=[],
        type=parse_option,
        metavar="PROTOCOL.NAME=VALUE",
        help="Set any protocol option, such as udp.max_datagram_size=1200; repeatable.",
    )


def protocol_overrides(args: argparse.Namespace, registry: Registry) -> dict[str, dict[str, Any]]:
    """The protocol options given on the command line, by protocol then option name."""
    overrides: dict[str, dict[str, Any]] = {}
    multiple = {
        (protocol, option.name)
        for protocol, registered in registry.protocols.items()
        for option in registered.obj.options
        if option.multiple
    }
    for dest, value in vars(args).items():
        if dest.startswith("option:"):
            _, protocol, name = dest.split(":")
            overrides.setdefault(protocol, {})[name] = value
    for protocol, name, value in args.generic_options:
        values = overrides.setdefault(protocol, {})
        if (protocol, name) in multiple:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    return overrides


def add_kernel_commands(cli: CommandRegistry) -> None:
    """Add ``worker``, ``serve`` and ``stats`` (the kernel plugin's ``channels_add_commands``)."""
    layer_help = "The CHANNEL_LAYERS alias to use (default: default)."
    worker = cli.command(
        "worker",
        help="Run a worker: consume the routed channels of a layer and run their consumers.",
        handler=_run_worker,
    )
    worker.add_argument("--layer", default="default", help=layer_help)
    worker.add_argument(
        "--only-channels",
        action="append",
        default=[],
        metavar="GLOB",
        help="Consume only the routed channels matching this glob; repeatable.",
    )
    worker.add_argument(
        "--exclude-channels",
        action="append",
        default=[],
        metavar="GLOB",
        help="Do not consume the routed channels matching this glob; repeatable.",
    )
    worker.add_argument(
        "--threads",
        type=int,
        default=None,
        help="How many consumers run at once, the size of the sync consumers' thread pool.",
    )

    registry = cli.registry

    def serve(args: argparse.Namespace) -> int:
        from .server import run_server

        alias = args.layer
        asgi_app = None
        if args.app is not None:
            app_alias, asgi_app = serve_target(args.app)
            if app_alias is not None and alias is not None and alias != app_alias:
                raise ImproperlyConfigured(
                    f"channels serve was given --layer {alias!r} and an app whose layer is "
                    f"{app_alias!r}; give one of them."
                )
            alias = alias or app_alias
        return run_server(
            protocols=args.protocols,
            options=protocol_overrides(args, registry),
            alias=alias or "default",
            drain_timeout=args.drain_timeout,
            asgi_app=asgi_app,
            mode=args.mode,
        )

    server = cli.command(
        "serve",
        help="Run the protocol server: every enabled protocol's listeners on one reactor.",
        handler=serve,
    )
    server.add_argument(
        "app",
        nargs="?",
        type=_app_reference,
        help="module:attribute naming a channel layer (my_project.asgi:channel_layer), whose "
        "alias's ROUTING gives the consumers, or an ASGI application "
        "(my_project.asgi:application) that serves HTTP instead of the routing.",
    )
    server.add_argument("--layer", default=None, help=layer_help)
    server.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="inprocess: this process runs the consumers; worker: every event goes on the "
        "layer for channels worker processes. Replaces CHANNELS['MODE'] for this run.",
    )
    server.add_argument(
        "--protocol",
        dest="protocols",
        action="append",
        metavar="NAME",
        help="Serve this protocol (repeatable); replaces CHANNELS['PROTOCOLS'].",
    )
    server.add_argument(
        "--drain-timeout",
        "--application-close-timeout",
        dest="drain_timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="On SIGTERM, how long running consumers may take to finish (default 10); "
        "--application-close-timeout is Daphne's name for it.",
    )
    _add_protocol_options(server, registry)

    stats = cli.command(
        "stats",
        help="Show what waits in a layer: messages pending, the oldest one's age, refused sends.",
        handler=_layer_stats,
    )
    stats.add_argument("--layer", default="default", help=layer_help)
    stats.add_argument(
        "--channel",
        dest="channels",
        action="append",
        default=[],
        metavar="NAME",
        help="Also show this channel's own statistics; repeatable.",
    )
    stats.add_argument("--json", action="store_true", help="Print JSON for machines.")


# The entry point -------------------------------------------------------------------------


def build_parser(registry: Registry, prog: str | None = None) -> argparse.ArgumentParser:
    """The full parser: global options, built-in commands, and every plugin's commands."""
    parser = argparse.ArgumentParser(
        prog=prog or "channels",
        description="Channels: event-driven, multi-protocol Django.",
        allow_abbrev=False,
    )
    _add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_global_options(common, suppress=True)
    subparsers = parser.add_subparsers(title="commands", metavar="<command>")
    cli = CommandRegistry(subparsers, registry, parents=[common])
    for name, description, handler in (
        (
            "plugins",
            "List the loaded plugins, what they registered, and those that failed.",
            _list_plugins,
        ),
        ("hooks", "List the hook specifications and the plugins implementing each.", _list_hooks),
    ):
        command = cli.command(name, help=description, handler=handler)
        command.add_argument("--json", action="store_true", help="Print JSON for machines.")
    registry.call_per_plugin("channels_add_commands", cli.for_plugin, argname="cli")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run ``channels`` with *argv* (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_global_options(early, suppress=False)
    known, _ = early.parse_known_args(argv)
    try:
        setup_django(known.settings, known.pythonpath)
        configure_logging(known.verbosity)
        from .plugins import get_registry

        parser = build_parser(get_registry(), prog)
    except ImproperlyConfigured as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    except pluggy.PluginValidationError as error:
        print(
            f"A plugin does not fit the hook specifications: {error}. Fix the hook's name or "
            "signature, or block the plugin (CHANNELS_PLUGINS_BLOCK).",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # argparse exits 2 on a usage error and 0 after --help.
        return EXIT_USAGE if stop.code else EXIT_OK
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: name a command.", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(handler(args) or EXIT_OK)
    except ImproperlyConfigured as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
