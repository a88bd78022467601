"""What a protocol plugin registers: its spec, its options, and the channels it owns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import PluginError
from .names import check_channel_name

if TYPE_CHECKING:
    from .listeners import Listener
    from .server import ProtocolServer


def boolean(value: str) -> bool:
    """An option's boolean from the command line: ``true``/``false``, ``yes``/``no``,
    ``on``/``off``, ``1``/``0`` (any case). Use it as ``Option(type=boolean)``."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean; use true or false (on or off)")


def is_positive_number(value: Any, *, integer: bool = False, zero: bool = False) -> bool:
    """Whether an option's *value* is a number above zero (or zero, with ``zero=True``): an
    ``int`` or a ``float``, never a ``bool`` (``True`` is not 1 second); with
    ``integer=True``, an ``int`` only. For the checks a plugin runs in ``channels_configure``::

        if not is_positive_number(options["max_peers"], integer=True):
            raise ImproperlyConfigured(f"... is {options['max_peers']!r}; set it to ...")
    """
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return False
    return value >= 0 if zero else value > 0


@dataclass(frozen=True)
class Option:
    """One option of a protocol: a key of ``CHANNELS["OPTIONS"][protocol]`` and a CLI flag.

    ``name`` is the settings key (lower case, ``max_datagram_size``); ``flags`` are the
    ``channels serve`` flags (``("--udp-max-datagram-size",)``); ``type`` converts the CLI
    string; ``multiple`` makes the flag repeatable and the setting a list.
    """

    name: str
    help: str
    default: Any = None
    type: Callable[[str], Any] = str
    flags: tuple[str, ...] = ()
    multiple: bool = False


@dataclass(frozen=True)
class ChannelSpec:
    """A channel (or a reply-channel prefix ending in ``!``) a plugin owns.

    ``sent_by`` is ``"protocol"`` for events the protocol server emits and ``"consumer"`` for
    what consumers send back. ``keys`` are the keys every message carries, ``optional_keys``
    those it may carry.
    """

    name: str
    sent_by: str
    keys: tuple[str, ...] = ()
    optional_keys: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        check_channel_name(self.name)
        if self.sent_by not in ("protocol", "consumer"):
            raise PluginError(
                f"ChannelSpec {self.name!r} has sent_by={self.sent_by!r}: "
                "use 'protocol' or 'consumer'."
            )


ListenerFactory = Callable[["ProtocolServer"], Iterable["Listener"]]


@dataclass(frozen=True)
class UpgradeRequest:
    """An HTTP request asking to switch protocols, handed by the HTTP listener to the
    protocol registered for its ``Upgrade`` token.

    ``headers`` are ``[name, value]`` byte pairs, names lower-cased, in arrival order;
    ``client`` and ``server`` are ``[host, port]``; ``leftover`` holds bytes the client sent
    after the request head (the first frames of the new protocol).
    """

    method: str
    path: str
    query_string: bytes
    headers: list[list[bytes]]
    http_version: str
    scheme: str
    root_path: str
    client: list | None
    server: list | None
    leftover: bytes = b""


# Called with the running server, the request, and the Twisted transport the HTTP listener
# hands over; returns the Twisted protocol that owns the connection from then on (the
# listener calls its makeConnection(transport) and feeds it ``leftover``).
UpgradeHandler = Callable[["ProtocolServer", UpgradeRequest, Any], Any]


@dataclass(frozen=True)
class ProtocolSpec:
    """A protocol server plugin, as registered by ``channels_register_protocols``.

    ``listeners(server)`` is called when ``channels serve`` starts with the protocol enabled
    and returns the :mod:`~channels_core.listeners` to open (stream listeners on Twisted
    endpoint strings, datagram listeners, serial ports, or services on the event loop).
    ``emits`` are the channels its events go to; ``consumes`` the reply channels (prefixes
    ending in ``!``) it answers. ``requires`` names protocols that must be enabled with it
    (WebSocket rides on HTTP's listener). ``upgrade`` is the HTTP ``Upgrade`` token the
    protocol takes over from the HTTP listener, if any, and ``accept_upgrade`` the
    :data:`UpgradeHandler` the HTTP listener calls for such a request; a protocol that only
    rides on another's listener returns no listeners of its own.
    """

    name: str
    listeners: ListenerFactory
    emits: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    requires: tuple[str, ...] = ()
    upgrade: str | None = None
    accept_upgrade: UpgradeHandler | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise PluginError(
                f"Protocol name {self.name!r} is not a plain identifier: use letters, digits, "
                "'-' or '_'."
            )
        for channel in (*self.emits, *self.consumes):
            check_channel_name(channel)
        if (self.upgrade is None) != (self.accept_upgrade is None):
            raise PluginError(
                f"Protocol {self.name!r} sets only one of upgrade={self.upgrade!r} and "
                "accept_upgrade: an Upgrade token needs the handler that takes the connection, "
                "and the other way round."
            )
        if not callable(self.listeners):
            raise PluginError(
                f"Protocol {self.name!r} has listeners={self.listeners!r}, which is not "
                "callable: pass a function taking the server and returning listeners."
            )

    def option_defaults(self) -> dict[str, Any]:
        """The options' default values, by name."""
        return {option.name: option.default for option in self.options}
