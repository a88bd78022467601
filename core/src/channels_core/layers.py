"""The channel layer contract, and the layers configured in ``CHANNEL_LAYERS``.

A layer carries messages between processes: ordered FIFO channels with expiry and capacity,
delivering each message to at most one receiver, and groups of channels. Every layer
distribution subclasses :class:`BaseChannelLayer` and passes the conformance suite in
:mod:`channels_core.testing.conformance`.
"""

from __future__ import annotations

import abc
import asyncio
import fnmatch
import math
import re
import threading
from collections import deque
from dataclasses import dataclass
from importlib import import_module
from typing import Any, ClassVar

from .exceptions import ForeignProcessChannel, ImproperlyConfigured
from .history import (
    DEFAULT_PRESENCE_TIMEOUT,
    History,
    HistoryPolicy,
    Position,
    Retention,
)
from .history import presence_timeout as check_presence_timeout
from .names import check_channel_name, new_process_prefix, random_suffix
from .names import process_prefix as owning_prefix

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one channel, or of a whole layer.

    ``pending`` counts messages waiting; ``oldest_age`` is the age in seconds of the oldest
    waiting message (None when nothing waits); ``full_count`` counts sends refused because a
    channel was at capacity, group sends included; ``dropped`` counts messages a receiver
    dropped because it could not decrypt or decode them (a layer that cannot drop any, such as
    the memory layer, leaves it 0).
    """

    pending: int
    oldest_age: float | None
    full_count: int
    dropped: int = 0


#: How long a due delayed message whose channel is full waits before it is tried again
#: (seconds); it is dropped once it is ``expiry`` seconds past its due time.
DELAY_RETRY_INTERVAL = 1.0


@dataclass(frozen=True)
class DelayDelivery:
    """What one :meth:`BaseChannelLayer.delay_deliver` call did.

    ``delivered`` counts the due messages put on their channels; ``dropped`` names the
    channel of each due message dropped because that channel stayed full until ``expiry``
    seconds past its due time; ``next_due`` is how many seconds remain until the next kept
    message is due (0 when more are due now, None when the layer keeps none).
    """

    delivered: int
    dropped: tuple[str, ...] = ()
    next_due: float | None = None


class BaseChannelLayer(abc.ABC):
    """The contract every channel layer implements.

    Configuration, as keyword arguments (``CHANNEL_LAYERS[alias]["CONFIG"]``):

    ``expiry`` (seconds, default 60)
        how long a message waits in a channel before it is dropped.
    ``group_expiry`` (seconds, default 86400)
        how long a channel stays in a group without being added again.
    ``capacity`` (default 100)
        how many messages a channel holds before sends raise
        :class:`~channels_core.exceptions.ChannelFull`.
    ``channel_capacity`` (default none)
        per-channel capacities: ``{pattern: capacity}``, the pattern a glob such as
        ``"http.response!*"`` or a compiled regular expression; the first match wins.
    ``max_message_size`` (bytes, default 1 MiB)
        sends of bigger messages raise :class:`~channels_core.exceptions.MessageTooLarge`.
    ``history`` (default none)
        the groups that keep their last messages: ``{glob: {"size": N, "ttl": seconds}}``
        (:mod:`channels_core.history`), for layers with the ``history`` extension.
    ``presence_timeout`` (seconds, default 30)
        how long the present members of a process that stopped renewing them (killed) stay,
        for layers with the ``presence`` extension.

    A subclass lists the extra keys it accepts in ``config_keys``; any other key is an error.
    ``cross_process`` says whether other processes can receive what it carries (False for a
    layer that lives in one process, such as ``memory``).
    """

    extensions: ClassVar[tuple[str, ...]] = ("groups", "flush", "statistics")
    cross_process: ClassVar[bool] = True
    config_keys: ClassVar[tuple[str, ...]] = ()
    base_config_keys: ClassVar[tuple[str, ...]] = (
        "expiry",
        "group_expiry",
        "capacity",
        "channel_capacity",
        "max_message_size",
        "history",
        "presence_timeout",
    )

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict[Any, int] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        history: dict | None = None,
        presence_timeout: float = DEFAULT_PRESENCE_TIMEOUT,
    ) -> None:
        self.expiry = self._positive("expiry", expiry)
        self.group_expiry = self._positive("group_expiry", group_expiry)
        self.capacity = int(self._positive("capacity", capacity))
        self.max_message_size = int(self._positive("max_message_size", max_message_size))
        self.channel_capacity = self._compile_capacities(channel_capacity or {})
        self.history = HistoryPolicy(history)
        self.presence_timeout = check_presence_timeout(presence_timeout)
        if self.history and "history" not in self.extensions:
            raise ImproperlyConfigured(
                f"Layer option 'history' is set, but {type(self).__name__} keeps no group "
                "history; use a layer with the history extension (memory, ipc, redis)."
            )
        self._capacity_cache: dict[str, int] = {}
        self.alias: str | None = None

    @staticmethod
    def _positive(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ImproperlyConfigured(
                f"Layer option {key!r} is {value!r}; it must be a positive number."
            )
        return value

    def _compile_capacities(self, patterns: dict[Any, int]) -> list[tuple[re.Pattern, int]]:
        if not isinstance(patterns, dict):
            raise ImproperlyConfigured(
                f"Layer option 'channel_capacity' is {patterns!r}; it must be a dict such as "
                "{'http.response!*': 10}."
            )
        compiled = []
        for pattern, capacity in patterns.items():
            self._positive(f"channel_capacity[{pattern!r}]", capacity)
            if isinstance(pattern, re.Pattern):
                regex = pattern
            elif isinstance(pattern, str):
                regex = re.compile(fnmatch.translate(pattern))
            else:
                raise ImproperlyConfigured(
                    f"Layer option channel_capacity has the key {pattern!r}; keys are glob "
                    "strings or compiled regular expressions."
                )
            compiled.append((regex, int(capacity)))
        return compiled

    def capacity_for(self, channel: str) -> int:
        """The capacity of *channel*: the first matching ``channel_capacity``, or ``capacity``."""
        try:
            return self._capacity_cache[channel]
        except KeyError:
            pass
        capacity = self.capacity
        for regex, pattern_capacity in self.channel_capacity:
            if regex.match(channel):
                capacity = pattern_capacity
                break
        if len(self._capacity_cache) > 10_000:
            self._capacity_cache.clear()
        self._capacity_cache[channel] = capacity
        return capacity

    # The contract ------------------------------------------------------------------------

    @abc.abstractmethod
    async def send(self, channel: str, message: dict) -> None:
        """Put *message* on *channel*.

        Raises :class:`~channels_core.exceptions.ChannelFull` at capacity,
        :class:`~channels_core.exceptions.InvalidChannelName`,
        :class:`~channels_core.exceptions.MessageError` for a value msgpack cannot carry and
        :class:`~channels_core.exceptions.MessageTooLarge` over ``max_message_size``.
        """

    @abc.abstractmethod
    async def receive(self, channel: str) -> dict:
        """Wait for the next message on *channel* and return it (a fresh dict).

        Cancelling a waiting receive loses no message: a message is either returned or left
        on the channel for the next receiver. A process-specific *channel* that this layer did
        not make raises :class:`~channels_core.exceptions.ForeignProcessChannel` at once
        (:meth:`check_receivable`).
        """

    @abc.abstractmethod
    async def receive_prefix(self, prefix: str) -> tuple[str, dict]:
        """Wait for the next message on any process-specific channel starting with *prefix*.

        *prefix* ends in ``!`` (``specific.XXXX!``). Returns ``(channel, message)``. This is
        how a protocol server takes the replies for all of its connections with one waiting
        receive; messages of one channel come in order, as with :meth:`receive`. A prefix
        this layer did not make raises
        :class:`~channels_core.exceptions.ForeignProcessChannel` at once.
        """

    async def new_channel(self, prefix: str = "specific") -> str:
        """A fresh process-specific channel name owned by this process: ``prefix.XXXX!YYYY``."""
        return check_channel_name(f"{self.process_prefix(prefix)}{random_suffix()}")

    def process_prefix(self, prefix: str = "specific") -> str:
        """This layer instance's process prefix for *prefix* (``specific.XXXX!``)."""
        prefixes = self.__dict__.setdefault("_process_prefixes", {})
        if prefix not in prefixes:
            prefixes[prefix] = new_process_prefix(prefix)
        return prefixes[prefix]

    def check_receivable(self, channel: str) -> None:
        """Raise :class:`~channels_core.exceptions.ForeignProcessChannel` when *channel* (a
        checked name, or a process prefix) is process-specific and not this layer's own.

        Layers call it in :meth:`receive` and :meth:`receive_prefix`: the messages of another
        process's channels never reach this one, and a receive on them would wait forever.
        """
        if "!" in channel:
            prefix = owning_prefix(channel)
            if prefix not in self.__dict__.get("_process_prefixes", {}).values():
                raise ForeignProcessChannel(channel, prefix)

    @abc.abstractmethod
    async def group_add(self, group: str, channel: str, presence: dict | None = None) -> None:
        """Add *channel* to *group* (again, which renews its membership's expiry).

        With *presence* (a small msgpack-safe dict), the channel is also present in the group
        with that info (:meth:`group_presence`) until :meth:`group_discard`, its membership's
        expiry, or ``presence_timeout`` after its process stopped renewing it. A layer
        without the ``presence`` extension raises :class:`NotImplementedError` for it.
        """

    @abc.abstractmethod
    async def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; no error when it is not a member."""

    @abc.abstractmethod
    async def group_send(self, group: str, message: dict) -> Position | None:
        """Send *message* to every channel of *group*. A full member is skipped and counted.

        When the group keeps history (the ``history`` option), the message is kept with its
        :class:`~channels_core.history.Position`, which is returned, and each member gets it
        with that position under the key ``"position"`` (an ``[epoch, offset]`` list); None
        otherwise.
        """

    async def group_presence(self, group: str) -> dict[str, dict]:
        """The present members of *group*: ``{channel: info}``."""
        raise NotImplementedError(
            f"{type(self).__name__} has no presence; use a layer with the presence extension "
            "(memory, ipc, redis)."
        )

    async def group_history(self, group: str, since: Position | None = None) -> History:
        """What *group* kept after the position *since* (everything kept when None), as a
        :class:`~channels_core.history.History`. Raises :class:`ValueError` when the group
        keeps no history."""
        raise NotImplementedError(
            f"{type(self).__name__} keeps no group history; use a layer with the history "
            "extension (memory, ipc, redis)."
        )

    def retention(self, group: str) -> Retention:
        """The history retention of *group*, or :class:`ValueError` saying how to keep one."""
        retention = self.history.for_group(group)
        if retention is None:
            raise ValueError(
                f"The group {group!r} keeps no history: add a glob matching it to the layer's "
                "'history' option, such as {'history': {'chat-*': {'size': 100}}}."
            )
        return retention

    @abc.abstractmethod
    async def flush(self) -> None:
        """Drop every message and every group."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the layer's resources; waiting receives raise LayerClosed."""

    @abc.abstractmethod
    async def stats(self, channel: str | None = None) -> LayerStats:
        """:class:`LayerStats` of *channel*, or of the whole layer when None."""

    async def group_members(self, group: str) -> list[str]:
        """The channels of *group*, for tools and tests (optional: default empty)."""
        return []

    # Delayed messages (the ``delay`` extension; see channels_core.delay) -----------------

    async def delay_add(self, channel: str, message: dict, delay: float) -> None:
        """Keep *message* in the layer's store until *delay* seconds from now, when
        :meth:`delay_deliver` puts it on *channel*.

        Raises what :meth:`send` raises for a bad name or message, and :class:`ValueError`
        for a *delay* that is not a finite number of seconds, zero or more. A layer without
        the ``delay`` extension raises :class:`NotImplementedError`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot keep delayed messages; use a layer with the delay "
            "extension (memory, ipc, redis)."
        )

    async def delay_deliver(self, limit: int = 100) -> DelayDelivery:
        """Put up to *limit* kept messages that are due on their channels, and say what was
        done and when the next one is due.

        Each kept message reaches its channel once however many processes call this at
        the same time: it leaves the store in the transaction that puts it on its channel
        (a layer that cannot do both in one transaction takes it out first, so a crash
        between the two loses it rather than sending it twice: say so). A due message whose
        channel is full stays kept and is tried again after :data:`DELAY_RETRY_INTERVAL`,
        until ``expiry`` seconds past its due time, when it is dropped and named in
        :attr:`DelayDelivery.dropped`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot keep delayed messages; use a layer with the delay "
            "extension (memory, ipc, redis)."
        )

    @staticmethod
    def check_delay(delay: Any) -> float:
        """*delay* (seconds) as a float; :class:`ValueError` unless finite and zero or more."""
        if (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise ValueError(
                f"The delay {delay!r} is not a number of seconds: give a finite number, 0 or more."
            )
        return float(delay)


def hand_to_waiter(waiters: dict[str, deque[asyncio.Future]], key: str, value: Any) -> bool:
    """Resolve the first receive still waiting in ``waiters[key]`` with *value*.

    For layer authors: *waiters* maps a channel (or a process prefix) to the futures of the
    receives waiting on it, oldest first; cancelled ones are skipped and an emptied queue is
    removed. Returns False when no receive was waiting, so the caller buffers *value*.
    """
    queue = waiters.get(key)
    while queue:
        waiter = queue.popleft()
        if not queue:
            del waiters[key]
        if not waiter.done():
            waiter.set_result(value)
            return True
    return False


def resolve_backend(backend: str) -> type[BaseChannelLayer]:
    """The layer class for a ``BACKEND`` value: a registered name or a dotted path."""
    from .plugins import get_registry

    registry = get_registry()
    if backend in registry.layers:
        return registry.layers[backend].obj
    if "." in backend:
        module_name, _, class_name = backend.rpartition(".")
        try:
            layer_class = getattr(import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise ImproperlyConfigured(
                f"BACKEND {backend!r} cannot be imported ({error}); use a registered layer "
                f"name ({', '.join(sorted(registry.layers)) or 'none installed'}) or fix "
                "the dotted path."
            ) from error
        if not (isinstance(layer_class, type) and issubclass(layer_class, BaseChannelLayer)):
            raise ImproperlyConfigured(
                f"BACKEND {backend!r} is {layer_class!r}, not a BaseChannelLayer subclass."
            )
        return layer_class
    installed = ", ".join(repr(name) for name in sorted(registry.layers)) or "none"
    raise ImproperlyConfigured(
        f"BACKEND {backend!r} is not an installed channel layer; installed layers: "
        f"{installed}. Install {registry.distribution_for(backend)} or use one of those."
    )


def layer_class_and_config(
    alias: str, testing: bool = False
) -> tuple[type[BaseChannelLayer], dict[str, Any]]:
    """The layer class and keyword arguments of ``CHANNEL_LAYERS[alias]`` (``TEST_CONFIG``
    when *testing* and set), checked without building the layer: the backend resolves and
    every key is one the class takes. ``manage.py check`` runs it for every alias."""
    from .settings import get_settings

    layer_settings = get_settings().layer(alias)
    layer_class = resolve_backend(layer_settings.backend)
    key_name, config = "CONFIG", layer_settings.config
    if testing and layer_settings.test_config is not None:
        key_name, config = "TEST_CONFIG", layer_settings.test_config
    accepted = set(layer_class.base_config_keys) | set(layer_class.config_keys)
    for key in config:
        if key not in accepted:
            raise ImproperlyConfigured(
                f"CHANNEL_LAYERS[{alias!r}][{key_name!r}] has the key {key!r}, which the "
                f"{layer_settings.backend!r} layer does not take; it takes "
                f"{', '.join(sorted(accepted))}."
            )
    return layer_class, config


def build_layer(alias: str, testing: bool = False) -> BaseChannelLayer:
    """Build the layer of ``CHANNEL_LAYERS[alias]`` (with ``TEST_CONFIG`` when *testing*)."""
    layer_class, config = layer_class_and_config(alias, testing)
    layer = layer_class(**config)
    layer.alias = alias
    return layer


class ChannelLayerManager:
    """The layers of this process, one instance per alias, built on first use."""

    def __init__(self) -> None:
        self._layers: dict[str, BaseChannelLayer] = {}
        self._lock = threading.Lock()

    def __getitem__(self, alias: str) -> BaseChannelLayer:
        layer = self._layers.get(alias)
        if layer is None:
            with self._lock:
                layer = self._layers.get(alias)
                if layer is None:
                    layer = self._layers[alias] = build_layer(alias)
        return layer

    def set(self, alias: str, layer: BaseChannelLayer | None) -> BaseChannelLayer | None:
        """Replace the layer of *alias* (None forgets it); returns the previous one."""
        with self._lock:
            previous = self._layers.pop(alias, None)
            if layer is not None:
                layer.alias = alias
                self._layers[alias] = layer
            return previous

    def reset(self) -> None:
        """Forget every layer (settings changed)."""
        with self._lock:
            self._layers.clear()


channel_layers = ChannelLayerManager()

DEFAULT_CHANNEL_LAYER = "default"


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> BaseChannelLayer:
    """The layer configured as ``CHANNEL_LAYERS[alias]``, built once per process."""
    return channel_layers[alias]


def require_cross_process(layer: BaseChannelLayer, what: str, why: str, otherwise: str) -> None:
    """Raise :class:`ImproperlyConfigured` when *layer* lives in one process (``memory``).

    The sentence reads "*what* needs a layer that crosses processes, so that *why*; ...
    Use channels-ipc ... or channels-redis ..., or *otherwise*."
    """
    if not layer.cross_process:
        raise ImproperlyConfigured(
            f"{what} needs a layer that crosses processes, so that {why}; the layer "
            f"{layer.alias!r} is {type(layer).__name__}, which lives in one process. Use "
            "channels-ipc (the processes of one machine) or channels-redis (several "
            f"machines), or {otherwise}."
        )
