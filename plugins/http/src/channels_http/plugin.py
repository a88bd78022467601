"""The hook implementations: the ``http`` protocol, its options, channels and consumers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels_core import hookimpl
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec

from .connection import DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_SIZE

REQUEST_KEYS = (
    "reply_channel",
    "http_version",
    "method",
    "scheme",
    "path",
    "query_string",
    "root_path",
    "headers",
    "body",
    "body_channel",
    "client",
    "server",
)


SECONDS = "set it to a positive number of seconds, such as 10."
BYTES = "set it to a positive number of bytes, such as 65536."


def _endpoint(value: str) -> None:
    if not value:
        raise ValueError


def _root_path(value: str) -> None:
    if value and (not value.startswith("/") or value.endswith("/")):
        raise ValueError


OPTIONS = (
    Option("bind", help="The address to listen on with TCP.", default="127.0.0.1",
           flags=("-b", "--bind"), fix="set it to the address to listen on, such as "
           "'127.0.0.1' or '::1'."),
    Option("port", help="The TCP port to listen on (8000 unless another endpoint is given).",
           default=None, type=int, minimum=0, maximum=65535, flags=("-p", "--port"),
           fix="set it to a TCP port number between 0 and 65535, or None."),
    Option("endpoint", help="A Twisted endpoint string to listen on (tcp:, unix:, ssl:, fd:); "
           "repeatable.", default=(), flags=("-e", "--endpoint"), multiple=True,
           validator=_endpoint, fix="set it to a list of Twisted endpoint strings, such as "
           "['tcp:8000:interface=127.0.0.1', 'unix:/run/app.sock']."),
    Option("unix_socket", help="A Unix socket path to listen on.", flags=("-u", "--unix-socket"),
           fix="set it to the path of a Unix socket, such as '/run/app.sock', or None."),
    Option("fd", help="An inherited file descriptor of a listening socket.", type=int,
           minimum=0, flags=("--fd",), fix="set it to the number of an inherited listening "
           "socket, such as 3, or None."),
    Option("proxy_headers", help="Trust X-Forwarded-For and X-Forwarded-Proto (only behind a "
           "proxy that sets them).", default=False, type=bool, flags=("--proxy-headers",)),
    Option("root_path", help="The path prefix the application is mounted at (ASGI root_path).",
           default="", flags=("--root-path",), validator=_root_path, fix="start it with '/' "
           "and leave off the trailing '/', such as '/app', or leave it empty."),
    Option("access_log", help="Log one line per request on the logger channels_http.access.",
           default=False, type=bool, flags=("--access-log",)),
    Option("static", help="Serve STATIC_URL from django.contrib.staticfiles' finders before "
           "Django's views, for development (manage.py runserver turns it on under DEBUG).",
           default=False, type=bool, flags=("--http-static",)),
    Option("http_timeout", help="Seconds to wait for the application's response before 504.",
           default=120.0, type=float, above=0, fix=SECONDS, flags=("--http-timeout",)),
    Option("request_timeout", help="Seconds a client may take to send a whole request before "
           "408.", default=10.0, type=float, above=0, fix=SECONDS,
           flags=("--http-request-timeout",)),
    Option("keepalive_timeout", help="Seconds an idle keep-alive connection stays open.",
           default=5.0, type=float, above=0, fix=SECONDS, flags=("--http-keepalive-timeout",)),
    Option("max_header_size", help="The largest request head in bytes; larger gets 431.",
           default=DEFAULT_MAX_HEADER_SIZE, type=int, above=0, fix=BYTES,
           flags=("--http-max-header-size",)),
    Option("max_body_size", help="The largest request body in bytes; larger gets 413.",
           default=DEFAULT_MAX_BODY_SIZE, type=int, above=0, fix=BYTES,
           flags=("--http-max-body-size",)),
)  # fmt: skip


def endpoints(options: Mapping[str, Any]) -> list[str]:
    """The Twisted endpoint strings the options ask for.

    ``endpoint``, ``unix_socket`` and ``fd`` add theirs; ``bind``/``port`` add a TCP one when
    ``port`` is set or when nothing else was asked for (port 8000).
    """
    found = list(options.get("endpoint") or ())
    if options.get("unix_socket"):
        found.append(f"unix:{options['unix_socket']}")
    if options.get("fd") is not None:
        found.append(f"fd:fileno={options['fd']}")
    port = options.get("port")
    if port is not None or not found:
        # Colons in an IPv6 address must be escaped in endpoint strings.
        interface = (options.get("bind") or "127.0.0.1").replace(":", "\\:")
        found.append(f"tcp:{8000 if port is None else port}:interface={interface}")
    return found


def listeners(server: Any) -> list:
    """One listener per endpoint, all sharing one factory."""
    from channels_core.listeners import StreamListener

    from .protocol import HttpFactory

    options = server.options["http"]
    if options["static"]:
        from .asgi import static_django_application

        static_django_application()  # fails now, not on the first request, without staticfiles
    factory = HttpFactory(server)
    # A TLS endpoint offers the ALPN ids of the protocols that take HTTP's connections
    # (channels-http2's h2), then HTTP/1.1's own.
    alpn = server.alpn_protocols("http/1.1")
    return [StreamListener(endpoint, factory, alpn=alpn) for endpoint in endpoints(options)]


def _asgi_adapter(host: Any, app: Any) -> Any:
    """``channels serve module:app``: every HTTP request goes to the ASGI app."""
    from .asgi import AsgiHttpAdapter

    return AsgiHttpAdapter(host, app)


async def _serve_http(host: Any, scope: dict, receive: Any, send: Any) -> None:
    """ChannelsApplication's ``http`` scopes: requests go to the routed consumers."""
    from .application import serve_http

    await serve_http(host, scope, receive, send)


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``http`` protocol."""
    register(
        ProtocolSpec(
            name="http",
            listeners=listeners,
            emits=("http.request",),
            consumes=("http.response!",),
            options=OPTIONS,
            asgi_adapter=_asgi_adapter,
            asgi_scope="http",
            serve_asgi=_serve_http,
            description="HTTP/1.1: requests to consumers, Django views or an ASGI app.",
        )
    )


@hookimpl
def channels_register_channels(register) -> None:
    """``http.request`` and its reply channels."""
    register(
        ChannelSpec(
            "http.request",
            sent_by="protocol",
            keys=REQUEST_KEYS,
            description="An HTTP request, its body whole (body_channel is always None).",
        )
    )
    register(
        ChannelSpec(
            "http.response!",
            sent_by="consumer",
            optional_keys=("status", "headers", "content", "more_content"),
            description="A response, or its next part: the first carries status and headers.",
        )
    )


@hookimpl
def channels_register_consumers(register) -> None:
    """The HTTP consumer classes and the worker-mode Django consumer."""
    from .asgi import django_views
    from .consumers import AsyncHttpConsumer

    register("AsyncHttpConsumer", AsyncHttpConsumer)
    register("django_views", django_views)
