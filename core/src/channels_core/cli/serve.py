"""``channels serve``: the protocol server, with one flag per declared protocol option."""

from __future__ import annotations

import argparse
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..exceptions import ImproperlyConfigured, PluginError
from ..settings import MODES
from .base import LAYER_HELP, CommandRegistry

if TYPE_CHECKING:
    from ..plugins import Registry


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
    from ..layers import BaseChannelLayer

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
                type=option.convert,
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
            return protocol, name, options[name].convert(raw)
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


def add_serve_command(cli: CommandRegistry) -> None:
    """Add ``channels serve`` and the options of every installed protocol."""
    registry = cli.registry

    def serve(args: argparse.Namespace) -> int:
        from ..server import run_processes, run_server
        from ..settings import get_settings
        from ..supervisor import process_count, process_index

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
        where = "--processes" if args.processes is not None else "CHANNELS['PROCESSES']"
        count = process_count(
            args.processes if args.processes is not None else get_settings().processes, where
        )
        if count > 1 and process_index() is None:
            return run_processes(
                count,
                args.command_line,
                protocols=args.protocols,
                options=protocol_overrides(args, registry),
                alias=alias or "default",
                drain_timeout=args.drain_timeout,
                mode=args.mode,
                reuse_port=args.reuse_port,
            )
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
    server.add_argument("--layer", default=None, help=LAYER_HELP)
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
        "--processes",
        default=None,
        metavar="N",
        help="Serve with N processes sharing the listeners (or 'auto': one per CPU), under a "
        "parent that restarts them; SIGHUP replaces them one at a time. Replaces "
        "CHANNELS['PROCESSES'] (default 1).",
    )
    server.add_argument(
        "--reuse-port",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="With --processes: give each process a SO_REUSEPORT socket of its own on every "
        "TCP endpoint and UDP address, so the kernel spreads clients by address, instead of "
        "one socket they share. Replaces CHANNELS['REUSE_PORT'] (default: shared).",
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
