"""The hook implementations: the ``http`` protocol, its options, channels and consumers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels_core import hookimpl
from channels_core.exceptions import ImproperlyConfigured
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec, boolean, is_positive_number

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


OPTIONS = (
    Option("bind", help="The address to listen on with TCP.", default="127.0.0.1",
           flags=("-b", "--bind")),
    Option("port", help="The TCP port to listen on (8000 unless another endpoint is given).",
           default=None, type=int, flags=("-p", "--port")),
    Option("endpoint", help="A Twisted endpoint string to listen on (tcp:, unix:, ssl:, fd:); "
           "repeatable.", default=(), flags=("-e", "--endpoint"), multiple=True),
    Option("unix_socket", help="A Unix socket path to listen on.", flags=("-u", "--unix-socket")),
    Option("fd", help="An inherited file descriptor of a listening socket.", type=int,
           flags=("--fd",)),
    Option("proxy_headers", help="Trust X-Forwarded-For and X-Forwarded-Proto (only behind a "
           "proxy that sets them).", default=False, type=boolean, flags=("--proxy-headers",)),
    Option("root_path", help="The path prefix the application is mounted at (ASGI root_path).",
           default="", flags=("--root-path",)),
    Option("access_log", help="Log one line per request on the logger channels_http.access.",
           default=False, type=boolean, flags=("--access-log",)),
    Option("static", help="Serve STATIC_URL from django.contrib.staticfiles' finders before "
           "Django's views, for development (manage.py runserver turns it on under DEBUG).",
           default=False, type=boolean, flags=("--http-static",)),
    Option("http_timeout", help="Seconds to wait for the application's response before 504.",
           default=120.0, type=float, flags=("--http-timeout",)),
    Option("request_timeout", help="Seconds a client may take to send a whole request before "
           "408.", default=10.0, type=float, flags=("--http-request-timeout",)),
    Option("keepalive_timeout", help="Seconds an idle keep-alive connection stays open.",
           default=5.0, type=float, flags=("--http-keepalive-timeout",)),
    Option("max_header_size", help="The largest request head in bytes; larger gets 431.",
           default=DEFAULT_MAX_HEADER_SIZE, type=int, flags=("--http-max-header-size",)),
    Option("max_body_size", help="The largest request body in bytes; larger gets 413.",
           default=DEFAULT_MAX_BODY_SIZE, type=int, flags=("--http-max-body-size",)),
)  # fmt: skip

_POSITIVE_NUMBERS = ("http_timeout", "request_timeout", "keepalive_timeout")
_POSITIVE_INTS = ("max_header_size", "max_body_size")


def check_options(options: Mapping[str, Any], where: str = "CHANNELS['OPTIONS']['http']") -> None:
    """Raise :class:`ImproperlyConfigured` for the first bad value in *options*."""

    def bad(key: str, fix: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{where}[{key!r}] is {options[key]!r}; {fix}")

    for key in _POSITIVE_NUMBERS:
        if key in options and not is_positive_number(options[key]):
            raise bad(key, "set it to a positive number of seconds, such as 10.")
    for key in _POSITIVE_INTS:
        if key in options and not is_positive_number(options[key], integer=True):
            raise bad(key, "set it to a positive number of bytes, such as 65536.")
    for key in ("proxy_headers", "access_log", "static"):
        if key in options and not isinstance(options[key], bool):
            raise bad(key, "set it to True or False.")
    port = options.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 0 <= port <= 65535):  # fmt: skip
        raise bad("port", "set it to a TCP port number between 0 and 65535, or None.")
    endpoints = options.get("endpoint", ())
    if (
        isinstance(endpoints, str)
        or not isinstance(endpoints, (list, tuple))
        or not all(isinstance(endpoint, str) and endpoint for endpoint in endpoints)
    ):
        raise bad("endpoint", "set it to a list of Twisted endpoint strings, such as "
                  "['tcp:8000:interface=127.0.0.1', 'unix:/run/app.sock'].")  # fmt: skip
    for key in ("bind", "unix_socket", "root_path"):
        if options.get(key) is not None and not isinstance(options[key], str):
            raise bad(key, "set it to a string.")
    root_path = options.get("root_path") or ""
    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise bad("root_path", "start it with '/' and leave off the trailing '/', such as "
                  "'/app', or leave it empty.")  # fmt: skip
    fd = options.get("fd")
    if fd is not None and (isinstance(fd, bool) or not isinstance(fd, int) or fd < 0):
        raise bad("fd", "set it to the number of an inherited listening socket, such as 3.")


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
    from .protocol import HttpFactory, HttpListener

    options = server.options["http"]
    check_options(options, where="The http options")
    if options["static"]:
        from .asgi import static_django_application

        static_django_application()  # fails now, not on the first request, without staticfiles
    factory = HttpFactory(server)
    return [HttpListener(endpoint, factory) for endpoint in endpoints(options)]


@hookimpl
def channels_configure(settings: Any) -> None:
    """Check ``CHANNELS['OPTIONS']['http']``."""
    check_options(settings.protocol_options("http"))


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
