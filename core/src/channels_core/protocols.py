"""What a protocol plugin registers: its spec, its options, and the channels it owns.

:class:`Option` and its helpers live in :mod:`channels_core.options`; they are importable
from here too, where protocol plugins find the rest of what they register.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import PluginError
from .names import check_channel_name
from .options import Option as Option
from .options import boolean as boolean
from .options import is_positive_number as is_positive_number

if TYPE_CHECKING:
    from .host import Host
    from .listeners import Listener
    from .server import ProtocolServer


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

# Called with the running server and the Twisted transport of a connection that a stream
# listener hands over before serving anything on it, because the client opened it with the
# protocol's ``preface`` or negotiated its ``alpn`` id in the TLS handshake; returns the Twisted
# protocol that owns the connection from then on (the listener calls its
# makeConnection(transport), then feeds it the bytes received so far).
ConnectionHandler = Callable[["ProtocolServer", Any], Any]

# ``target(channel, content, reraise=False)``: serves one of the protocol's events with an
# ASGI application and returns True, as :meth:`~channels_core.host.Host.emit` would.
AsgiAdapter = Callable[..., Awaitable[bool]]
# ``serve_asgi(host, scope, receive, send)``: serves one ASGI connection of the protocol's
# scope type with the routed consumers, through the host.
ServeAsgi = Callable[["Host", dict, Callable, Callable], Awaitable[None]]


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

    A protocol may also take whole connections from another's stream listener before it
    serves anything on them (HTTP/2 from HTTP/1.1's): ``alpn`` is its TLS ALPN protocol id
    (``"h2"``), offered by listeners that ask :meth:`ProtocolServer.alpn_protocols`;
    ``preface`` the bytes a cleartext client opens with (HTTP/2's connection preface); and
    ``accept_connection`` the :data:`ConnectionHandler` the listener calls for such a
    connection (:meth:`ProtocolServer.connection_handler`).

    Two optional bridges to ASGI 3, for protocols that have an ASGI form (HTTP, WebSocket):
    ``asgi_adapter(host, app)`` returns the :data:`AsgiAdapter` that serves the protocol's
    ``emits`` with the ASGI *app* that ``channels serve module:app`` names; ``asgi_scope`` is
    the ASGI scope type (``"websocket"``) that
    :class:`~channels_core.application.ChannelsApplication` hands to ``serve_asgi(host,
    scope, receive, send)``, which serves the connection with the routed consumers.
    """

    name: str
    listeners: ListenerFactory
    emits: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    requires: tuple[str, ...] = ()
    upgrade: str | None = None
    accept_upgrade: UpgradeHandler | None = None
    asgi_adapter: Callable[[Host, Any], AsgiAdapter] | None = None
    asgi_scope: str | None = None
    serve_asgi: ServeAsgi | None = None
    alpn: str | None = None
    preface: bytes | None = None
    accept_connection: ConnectionHandler | None = None
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
        if (self.asgi_scope is None) != (self.serve_asgi is None):
            raise PluginError(
                f"Protocol {self.name!r} sets only one of asgi_scope={self.asgi_scope!r} and "
                "serve_asgi: an ASGI scope type needs the coroutine function that serves it, "
                "and the other way round."
            )
        if (self.alpn is not None or self.preface is not None) != (
            self.accept_connection is not None
        ):
            raise PluginError(
                f"Protocol {self.name!r} sets alpn={self.alpn!r}, preface={self.preface!r} "
                "and accept_connection inconsistently: an ALPN id or a preface needs the "
                "handler that takes the connection, and the handler needs one of them."
            )
        if self.preface is not None and (not isinstance(self.preface, bytes) or not self.preface):
            raise PluginError(
                f"Protocol {self.name!r} has preface={self.preface!r}: give the non-empty "
                "bytes a client opens a connection with, such as HTTP/2's connection preface."
            )
        if not callable(self.listeners):
            raise PluginError(
                f"Protocol {self.name!r} has listeners={self.listeners!r}, which is not "
                "callable: pass a function taking the server and returning listeners."
            )

    def option_defaults(self) -> dict[str, Any]:
        """The options' default values, by name."""
        return {option.name: option.default for option in self.options}
