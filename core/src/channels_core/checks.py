"""What start-up checks, said again by ``manage.py check``.

``channels serve``, ``channels worker`` and ``manage.py runserver`` refuse bad settings at
start-up with one sentence. :func:`configuration_problems` runs the same checks without
starting anything (the ``channels_core`` app's system check calls it), and says each problem
with the sentence start-up gives:

- ``CHANNEL_LAYERS`` and ``CHANNELS``, the plugins they name and ``CHANNELS["OPTIONS"]`` (the
  plugin registry is built, as at start-up);
- the enabled protocols: installed, with those they require;
- each alias's ``BACKEND`` and the keys of its ``CONFIG`` and ``TEST_CONFIG``;
- each ``ROUTING``: importable and a list of routes; the ``default`` alias, which the
  servers and workers run, must have one.

It also finds routes on channels that look like a plugin's but that no installed plugin
registers (:func:`unknown_channels`), such as ``websocket.recieve``, whose consumer would
never run: start-up logs a warning for each (:func:`warn_unknown_channels`) and ``manage.py
check`` reports a warning. A routed channel is reported when no installed plugin registers it
(as a channel, or as a protocol's ``emits`` or ``consumes``) and either

- it is in the family of a registered channel (the part before the first ``.``:
  ``websocket.``, ``http.``, ``udp.``), since those names belong to the installed
  protocols; or
- it is close to a registered name (:func:`difflib.get_close_matches`, a ratio of at least
  :data:`CLOSE_MATCH`: ``websockets.receive``).

A project's own channels (``thumbnails``, ``chat.message``) are neither, and are left alone.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .plugins import Registry
    from .routing import Router

logger = logging.getLogger(__name__)

#: How alike (:class:`difflib.SequenceMatcher` ratio) a routed channel outside every
#: registered family must be to a registered one to be reported.
CLOSE_MATCH = 0.8


@dataclass(frozen=True)
class Problem:
    """One thing :func:`configuration_problems` found: the sentence start-up says, and its
    code, the tail of the system check id: ``E001`` start-up refuses it, ``E002`` the
    ``default`` alias has no ``ROUTING`` (refused too, but a project that only serves an ASGI
    application silences it), ``W001`` a route on an unregistered channel (a warning)."""

    message: str
    code: str

    @property
    def is_error(self) -> bool:
        """Whether start-up refuses it."""
        return self.code.startswith("E")


def registered_channels(registry: Registry) -> set[str]:
    """Every channel name (and reply prefix ending in ``!``) the installed plugins register:
    their channel specs, and what each protocol emits and consumes."""
    names = set(registry.channels)
    for registered in registry.protocols.values():
        names.update(registered.obj.emits, registered.obj.consumes)
    return names


def _family(name: str) -> str | None:
    family, dot, _ = name.partition(".")
    return family if dot else None


def unknown_channels(routed: Iterable[str], registered: Iterable[str]) -> dict[str, str]:
    """The *routed* channels that look like a plugin's but are not *registered*, each with
    the closest registered name (see the module's docstring for the rule)."""
    known = set(registered)
    reply_prefixes = tuple(name for name in known if name.endswith("!"))
    # What a route may be on, and so what to suggest: not the reply channels' prefixes.
    routable = sorted(known.difference(reply_prefixes))
    families: dict[str, list[str]] = {}
    for name in routable:
        family = _family(name)
        if family is not None:
            families.setdefault(family, []).append(name)
    found = {}
    for channel in sorted(set(routed)):
        if channel in known or channel.startswith(reply_prefixes):
            continue
        closest = difflib.get_close_matches(channel, routable, n=1, cutoff=CLOSE_MATCH)
        if not closest:
            relatives = families.get(_family(channel) or "", [])
            closest = difflib.get_close_matches(channel, relatives, n=1, cutoff=0)
        if closest:
            found[channel] = closest[0]
    return found


def unknown_channel_warnings(router: Router, alias: str, registry: Registry) -> list[str]:
    """A sentence for each of *router*'s :func:`unknown_channels`."""
    where = f"CHANNEL_LAYERS[{alias!r}]['ROUTING']"
    return [
        f"{where} routes {channel!r}, which no installed plugin registers: did you mean "
        f"{closest!r}? (channels plugins lists the registered channels.)"
        for channel, closest in unknown_channels(
            router.channels, registered_channels(registry)
        ).items()
    ]


def warn_unknown_channels(router: Router, alias: str, registry: Registry) -> None:
    """Log a warning for each of *router*'s :func:`unknown_channels`, at start-up."""
    for sentence in unknown_channel_warnings(router, alias, registry):
        logger.warning("%s", sentence)


def configuration_problems() -> list[Problem]:
    """Everything start-up would refuse or warn about in this process's settings, routing and
    installed plugins, each once; nothing is started and no layer is built."""
    from .layers import DEFAULT_CHANNEL_LAYER, layer_class_and_config
    from .plugins import get_registry
    from .routing import Router
    from .settings import get_settings

    problems: list[Problem] = []

    def attempt(check: Callable[..., Any], *args: Any, code: str = "E001") -> Any:
        try:
            return check(*args)
        except ImproperlyConfigured as error:
            problems.append(Problem(str(error), code))
            return None

    settings = attempt(get_settings)
    registry = attempt(get_registry) if settings is not None else None
    if registry is None:
        return problems
    attempt(registry.enabled_protocols, settings.protocols)
    for alias, layer in settings.layers.items():
        if attempt(layer_class_and_config, alias) and layer.test_config is not None:
            attempt(layer_class_and_config, alias, True)
        if layer.routing is None and alias != DEFAULT_CHANNEL_LAYER:
            continue  # only the aliases that are served need a routing
        router = attempt(Router.from_alias, alias, code="E002" if layer.routing is None else "E001")
        if router is not None:
            problems.extend(
                Problem(sentence, "W001")
                for sentence in unknown_channel_warnings(router, alias, registry)
            )
    return problems
