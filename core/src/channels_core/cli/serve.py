"""``channels serve``: the protocol server, with one flag per declared protocol option."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..exceptions import ImproperlyConfigured, PluginError
from ..settings import MODES
from .base import LAYER_HELP, BooleanFlag, CommandRegistry

if TYPE_CHECKING:
    from ..plugins import Registry
    from ..settings import ChannelsSettings

logger = logging.getLogger(__name__)


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
    built from ``CHANNEL_LAYERS``, ``(None, app)`` for an ASGI application (any callable).

    The module is looked for on the path, then in the current directory. A module that
    names the settings itself, as a Channels 1 ``asgi.py`` did
    (``os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...)`` before ``get_channel_layer()``),
    gets Django set up with them, as Channels 1's ``get_channel_layer`` did; what was read
    before, without them, is forgotten.
    """
    from ..layers import BaseChannelLayer

    module_name, attr = reference
    where = f"{module_name}:{attr}"
    settings_before = os.environ.get("DJANGO_SETTINGS_MODULE")
    # As daphne does, the module may be found in the directory channels runs in (after
    # --pythonpath and the installed packages).
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = getattr(import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ImproperlyConfigured(
            f"channels serve {where}: it cannot be imported ({error}); check the module path "
            "and --pythonpath."
        ) from error
    if not settings_before and os.environ.get("DJANGO_SETTINGS_MODULE"):
        _adopt_settings_named_by(where)
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


def serve_mode(
    flag: str | None, settings: ChannelsSettings, layer_target: str | None
) -> tuple[str, str]:
    """The mode ``channels serve`` runs in, and why, as ``(mode, reason)``.

    ``--mode`` wins, then ``CHANNELS["MODE"]`` when it is set; otherwise *layer_target* (the
    ``module:channel_layer`` served, if one was) means worker mode, as
    ``daphne module:channel_layer`` did, and anything else the in-process default.
    """
    if flag is not None:
        return flag, f"--mode {flag}"
    if settings.mode_is_set:
        return settings.mode, f"CHANNELS['MODE'] is {settings.mode!r}"
    if layer_target is not None:
        return "worker", (
            f"{layer_target} names a channel layer, which means worker mode as with daphne, "
            "and neither --mode nor CHANNELS['MODE'] is set; channels worker processes run "
            "the consumers (--mode inprocess runs them here)"
        )
    return "inprocess", (
        "neither --mode nor CHANNELS['MODE'] is set, so this process runs the consumers "
        "(--mode worker hands them to channels worker processes)"
    )


def _adopt_settings_named_by(where: str) -> None:
    """Set Django up with the settings module *where* named, and forget the settings,
    plugins and layers read without it (the layer it built keeps its alias, which is all
    ``channels serve`` takes from it)."""
    from ..layers import channel_layers
    from ..plugins import reset_registry
    from ..settings import reset_settings
    from .entry import setup_django

    logger.debug("%s named the settings %s.", where, os.environ["DJANGO_SETTINGS_MODULE"])
    setup_django(None, None)
    reset_settings()
    reset_registry()
    channel_layers.reset()


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
            help = f"{option.help} (setting {setting}; default {option.default!r})"
            if option.type is bool and not option.multiple:
                # A flag alone is true, as in Daphne; a value still may follow it.
                group.add_argument(
                    *option.flags,
                    dest=_option_dest(protocol, option.name),
                    metavar="BOOL",
                    action=BooleanFlag,
                    convert=option.convert,
                    default=argparse.SUPPRESS,
                    help=f"{help}; alone it means true",
                )
                continue
            group.add_argument(
                *option.flags,
                dest=_option_dest(protocol, option.name),
                metavar=option.name.upper(),
                type=option.convert,
                action="append" if option.multiple else "store",
                default=argparse.SUPPRESS,
                help=help,
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
        asgi_app = layer_target = None
        if args.app is not None:
            app_alias, asgi_app = serve_target(args.app)
            if app_alias is not None and alias is not None and alias != app_alias:
                raise ImproperlyConfigured(
                    f"channels serve was given --layer {alias!r} and an app whose layer is "
                    f"{app_alias!r}; give one of them."
                )
            alias = alias or app_alias
            if app_alias is not None:
                layer_target = ":".join(args.app)
        settings = get_settings()
        mode, reason = serve_mode(args.mode, settings, layer_target)
        where = "--processes" if args.processes is not None else "CHANNELS['PROCESSES']"
        count = process_count(
            args.processes if args.processes is not None else settings.processes, where
        )
        if count > 1 and process_index() is None:
            return run_processes(
                count,
                args.command_line,
                protocols=args.protocols,
                options=protocol_overrides(args, registry),
                alias=alias or "default",
                drain_timeout=args.drain_timeout,
                mode=mode,
                reuse_port=args.reuse_port,
            )
        return run_server(
            protocols=args.protocols,
            options=protocol_overrides(args, registry),
            alias=alias or "default",
            drain_timeout=args.drain_timeout,
            asgi_app=asgi_app,
            mode=mode,
            mode_reason=reason,
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
        "alias's ROUTING gives the consumers and which means worker mode unless --mode or "
        "CHANNELS['MODE'] says otherwise, as with daphne; or an ASGI application "
        "(my_project.asgi:application) that serves HTTP instead of the routing.",
    )
    server.add_argument("--layer", default=None, help=LAYER_HELP)
    server.add_argument(
        "--mode",
        choices=MODES,
        default=None,
        help="inprocess: this process runs the consumers; worker: every event goes on the "
        "layer for channels worker processes. Replaces CHANNELS['MODE'] for this run "
        "(default: CHANNELS['MODE'] when set, else worker for a module:channel_layer, else "
        "inprocess).",
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
