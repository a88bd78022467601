"""Routing: which consumer handles a message, by channel name and message content.

A routing is a list of :func:`route`, :func:`route_class` and :func:`include` entries::

    channel_routing = [
        route("websocket.receive", chat_receive, path=r"^/chat/(?P<room>[^/]+)/$"),
        route_class(EchoConsumer, path=r"^/echo/$"),
        include("shop.routing.routes", path=r"^/shop"),
    ]

Filters are regular expressions matched (with :meth:`re.Pattern.match`, so from the start of
the value) against message keys; the named groups of every filter that matched become keyword
arguments of the consumer. Filter values that are ``bytes`` are decoded as latin-1 before
matching, which maps each byte to one character and never fails, so ASCII patterns match
ASCII bytes as expected. A message without the key, or whose value is neither ``str`` nor
``bytes``, does not match.

An :func:`include`'s filters must start with ``^``; the part of the value they matched is
stripped before the included routes match (``path=r"^/shop"`` then ``path=r"^/cart/$"``
matches ``/shop/cart/``). The consumer still receives the whole message.

:class:`Router` compiles a routing once into a dict keyed by channel name; matching a message
is a dict lookup and then the few filters of that channel's routes, first match wins. The
answer is remembered per channel and (short) values of the keys its routes filter on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from .exceptions import ImproperlyConfigured
from .names import check_channel_name

Consumer = Callable[..., Any]
Filters = tuple[tuple[str, re.Pattern], ...]
# One level of filters: the filters and whether they strip what they matched (include).
Stage = tuple[Filters, bool]
# The most distinct filter values remembered per channel, and the longest value remembered;
# see Router.match.
_MATCH_CACHE_LIMIT = 1000
_MATCH_CACHE_VALUE_LIMIT = 256


def _compile_filters(owner: str, filters: dict[str, Any]) -> Filters:
    compiled = []
    for key, pattern in filters.items():
        if isinstance(pattern, re.Pattern):
            regex = pattern
        elif isinstance(pattern, str):
            try:
                regex = re.compile(pattern)
            except re.error as error:
                raise ImproperlyConfigured(
                    f"{owner} has the filter {key}={pattern!r}, which is not a valid regular "
                    f"expression ({error}): fix the pattern."
                ) from error
        else:
            raise ImproperlyConfigured(
                f"{owner} has the filter {key}={pattern!r}, a {type(pattern).__name__}: pass "
                "a str regular expression (bytes values are decoded as latin-1 before matching)."
            )
        if not isinstance(regex.pattern, str):
            raise ImproperlyConfigured(
                f"{owner} has the filter {key}={regex.pattern!r}, a bytes pattern: pass a str "
                "pattern (bytes values are decoded as latin-1 before matching)."
            )
        if regex.groups != len(regex.groupindex):
            raise ImproperlyConfigured(
                f"{owner} has the filter {key}={regex.pattern!r} with an unnamed group: only "
                "named groups (?P<name>...) become consumer arguments; name the group or make "
                "it non-capturing with (?:...)."
            )
        compiled.append((key, regex))
    return tuple(compiled)


def _describe_filters(filters: dict[str, Any]) -> str:
    return "".join(
        f", {key}={getattr(value, 'pattern', value)!r}" for key, value in filters.items()
    )


@dataclass(frozen=True, eq=False)
class Route:
    """A consumer for one or more channels, with filters on the message's keys."""

    channels: tuple[str, ...]
    consumer: Consumer
    filters: Filters

    def __repr__(self) -> str:
        filters = "".join(f", {key}={regex.pattern!r}" for key, regex in self.filters)
        return f"<Route {','.join(self.channels)} -> {_consumer_name(self.consumer)}{filters}>"


@dataclass(frozen=True, eq=False)
class Include:
    """Another routing, reached when the include's prefix filters match."""

    routing: str | list | tuple
    filters: Filters

    def __repr__(self) -> str:
        filters = "".join(f", {key}={regex.pattern!r}" for key, regex in self.filters)
        return f"<Include {self.routing!r}{filters}>"


def _consumer_name(consumer: Any) -> str:
    module = getattr(consumer, "__module__", None)
    name = getattr(consumer, "__qualname__", None) or repr(consumer)
    return f"{module}.{name}" if module else name


def route(channel: str, consumer: Consumer, **filters: str | re.Pattern) -> Route:
    """Route messages on *channel* to *consumer* when every filter matches its key.

    ``consumer`` is a function ``consumer(message, **kwargs)`` (sync or ``async def``) or a
    :class:`~channels_core.consumers.BaseConsumer` subclass. Named groups of the filters become
    ``kwargs``.
    """
    owner = f"route({channel!r}, {_consumer_name(consumer)}{_describe_filters(filters)})"
    check_channel_name(channel)
    if not callable(consumer):
        raise ImproperlyConfigured(
            f"{owner}: the consumer {consumer!r} is a {type(consumer).__name__}, which is not "
            "callable; pass the consumer function or class itself."
        )
    return Route((channel,), consumer, _compile_filters(owner, filters))


def route_class(consumer_class: type, **filters: str | re.Pattern) -> Route:
    """Route every channel of ``consumer_class.channel_names()`` to the class."""
    owner = f"route_class({_consumer_name(consumer_class)}{_describe_filters(filters)})"
    channel_names = getattr(consumer_class, "channel_names", None)
    if not isinstance(consumer_class, type) or not callable(channel_names):
        raise ImproperlyConfigured(
            f"{owner}: {consumer_class!r} is not a consumer class with channel_names(); "
            "subclass channels_core.BaseConsumer, or use route() for a function consumer."
        )
    channels = tuple(sorted(channel_names()))
    if not channels:
        raise ImproperlyConfigured(
            f"{owner}: the class handles no channels (channel_names() is empty); fill in its "
            "method_mapping, such as {'websocket.receive': 'receive'}."
        )
    for channel in channels:
        check_channel_name(channel)
    return Route(channels, consumer_class, _compile_filters(owner, filters))


def include(routing: str | list | tuple, **filters: str | re.Pattern) -> Include:
    """Route with another routing (a dotted path to a list, or the list) under prefix filters.

    Each filter must start with ``^``; the matched prefix is stripped from the value before
    the included routes match it.
    """
    owner = f"include({routing!r}{_describe_filters(filters)})"
    if not isinstance(routing, (str, list, tuple)):
        raise ImproperlyConfigured(
            f"{owner}: the routing is a {type(routing).__name__}; pass a dotted path to a "
            "list of routes, such as 'chat.routing.routes', or the list itself."
        )
    compiled = _compile_filters(owner, filters)
    for key, regex in compiled:
        if not regex.pattern.startswith("^"):
            raise ImproperlyConfigured(
                f"{owner}: the filter {key}={regex.pattern!r} does not start with '^'; include "
                f"filters match a prefix that is stripped, so anchor it: {key}="
                f"{'^' + regex.pattern!r}."
            )
    return Include(routing, compiled)


def resolve_routing(routing: str | list | tuple, where: str = "The routing") -> list:
    """The list of routes named by *routing*: a dotted path to a list, or a list/tuple."""
    if isinstance(routing, str):
        module_name, _, attribute = routing.rpartition(".")
        if not module_name:
            raise ImproperlyConfigured(
                f"{where} {routing!r} is not a dotted path; name the list of routes with its "
                "module, such as 'my_project.routing.channel_routing'."
            )
        try:
            value = getattr(import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ImproperlyConfigured(
                f"{where} {routing!r} cannot be imported ({error}); fix the dotted path so it "
                "names a list of routes, such as 'my_project.routing.channel_routing'."
            ) from error
    else:
        value = routing
    if not isinstance(value, (list, tuple)):
        raise ImproperlyConfigured(
            f"{where} {routing!r} is a {type(value).__name__}, not a list; make it a list of "
            "route(), route_class() and include() entries."
        )
    for entry in value:
        if not isinstance(entry, (Route, Include)):
            raise ImproperlyConfigured(
                f"{where} {routing!r} holds {entry!r}, which is not a route; build its entries "
                "with route(), route_class() or include()."
            )
    return list(value)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return None


def _is_short(value: Any) -> bool:
    return not isinstance(value, (str, bytes)) or len(value) <= _MATCH_CACHE_VALUE_LIMIT


def _match_stages(stages: tuple[Stage, ...], content: dict) -> dict[str, Any] | None:
    """The kwargs of a route whose stages all match *content*, else None."""
    kwargs: dict[str, Any] = {}
    stripped: dict[str, str] = {}
    for filters, strip in stages:
        for key, regex in filters:
            value = stripped[key] if key in stripped else _text(content.get(key))
            if value is None:
                return None
            found = regex.match(value)
            if found is None:
                return None
            kwargs.update(found.groupdict())
            if strip:
                stripped[key] = value[found.end() :]
    return kwargs


class Router:
    """A compiled routing: ``match(channel, content)`` finds the consumer of a message."""

    def __init__(self, routing: str | list | tuple, where: str = "The routing") -> None:
        self.routing = routing
        self._table: dict[str, list[tuple[tuple[Stage, ...], Consumer]]] = {}
        self._compile(routing, (), (), where)
        self.channels: frozenset[str] = frozenset(self._table)
        # A match depends only on the channel and the values of the keys its routes filter
        # on, so it is remembered by those values: most messages of a channel share them (a
        # WebSocket connection's path), and matching the patterns costs more than a lookup.
        self._filter_keys = {
            channel: tuple(
                sorted({key for stages, _ in routes for filters, _ in stages for key, _ in filters})
            )
            for channel, routes in self._table.items()
        }
        self._matches: dict[str, dict[tuple, tuple[Consumer, dict[str, Any]] | None]] = {
            channel: {} for channel in self._table
        }

    @classmethod
    def from_alias(cls, alias: str = "default") -> Router:
        """The router of ``CHANNEL_LAYERS[alias]["ROUTING"]``."""
        from .settings import NO_SETTINGS_MODULE, get_settings

        settings = get_settings()
        routing = settings.layer(alias).routing
        if routing is None and not settings.from_django:
            raise ImproperlyConfigured(NO_SETTINGS_MODULE)
        if routing is None:
            raise ImproperlyConfigured(
                f"CHANNEL_LAYERS[{alias!r}] has no 'ROUTING'; set it to the dotted path of your "
                "routing list, such as 'my_project.routing.channel_routing'."
            )
        return cls(routing, where=f"CHANNEL_LAYERS[{alias!r}]['ROUTING']")

    def _compile(
        self, routing: str | list | tuple, outer: tuple[Stage, ...], seen: tuple, where: str
    ) -> None:
        entries = resolve_routing(routing, where)
        key = routing if isinstance(routing, str) else id(routing)
        if key in seen:
            raise ImproperlyConfigured(
                f"The routing {routing!r} includes itself; remove the include() that loops back."
            )
        for entry in entries:
            if isinstance(entry, Include):
                self._compile(
                    entry.routing,
                    (*outer, (entry.filters, True)),
                    (*seen, key),
                    "The included routing",
                )
            else:
                stages = (*outer, (entry.filters, False))
                # Routes without any filter skip the matching loop entirely.
                stages = tuple(stage for stage in stages if stage[0])
                for channel in entry.channels:
                    self._table.setdefault(channel, []).append((stages, entry.consumer))

    def match(self, channel: str, content: dict) -> tuple[Consumer, dict[str, Any]] | None:
        """``(consumer, kwargs)`` of the first route matching the message, or None."""
        keys = self._filter_keys.get(channel)
        if keys is None:
            return None
        if not keys:  # no route of the channel filters: the first one takes every message
            return self._table[channel][0][1], {}
        matches = self._matches[channel]
        values = tuple(map(content.get, keys))
        try:
            found = matches[values]
        except KeyError:
            found = self._match(channel, content)
            # Long values (a route filtering on a datagram's data) are not worth keeping, and
            # values that never repeat (ids in a path) must not grow the cache for ever.
            if all(_is_short(value) for value in values):
                if len(matches) >= _MATCH_CACHE_LIMIT:
                    matches.clear()
                matches[values] = found
        except TypeError:  # an unhashable value, which no filter matches anyway
            found = self._match(channel, content)
        if found is None:
            return None
        consumer, kwargs = found
        # A copy, so that a caller changing its kwargs cannot change the next match.
        return consumer, dict(kwargs)

    def _match(self, channel: str, content: dict) -> tuple[Consumer, dict[str, Any]] | None:
        for stages, consumer in self._table[channel]:
            if not stages:
                return consumer, {}
            kwargs = _match_stages(stages, content)
            if kwargs is not None:
                return consumer, kwargs
        return None

    def __repr__(self) -> str:
        return f"<Router {self.routing!r} channels={sorted(self.channels)}>"
