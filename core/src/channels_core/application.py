"""Channels consumers served by another ASGI server (uvicorn, Daphne, Hypercorn).

::

    # my_project/asgi.py
    import django
    django.setup()
    from channels_core.application import ChannelsApplication
    application = ChannelsApplication()        # the routing of CHANNEL_LAYERS["default"]

    $ uvicorn my_project.asgi:application

:class:`ChannelsApplication` is a :class:`~channels_core.host.Host` without listeners: each
ASGI connection goes to the enabled protocol that registered its scope type
(``ProtocolSpec.asgi_scope``: ``"http"`` for channels-http, ``"websocket"`` for channels-ws),
whose ``serve_asgi(host, scope, receive, send)`` turns it into events for the routed
consumers and their replies into ASGI events, as under ``channels serve``. Replies reach the
connection directly in-process; group sends and sends from other processes reach it through
the layer. With ``CHANNELS["MODE"] = "worker"`` the events go on the layer for ``channels
worker``. (``channels_http.application.ChannelsApplication`` is the same class.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .host import Host
from .layers import DEFAULT_CHANNEL_LAYER


class ApplicationHost(Host):
    """The host of a :class:`ChannelsApplication`: ``kind`` is ``"application"``."""

    kind = "application"


class ChannelsApplication:
    """An ASGI 3 application running the routing of ``CHANNEL_LAYERS[alias]``.

    Handles the ``lifespan`` scope and the scope types of the enabled protocols. Built before
    Django is set up, it reads the settings on its first call. ``host`` is its
    :class:`~channels_core.host.Host` once started, None before and after.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER) -> None:
        self.alias = alias
        self.host: Host | None = None
        self._scopes: dict[str, Any] | None = None

    def _scope_servers(self) -> dict[str, Any]:
        """The ``serve_asgi`` of each enabled protocol, by ASGI scope type (read once)."""
        if self._scopes is None:
            from .plugins import get_registry
            from .settings import get_settings

            protocols = get_registry().enabled_protocols(get_settings().protocols)
            self._scopes = {
                spec.asgi_scope: spec.serve_asgi for spec in protocols if spec.asgi_scope
            }
        return self._scopes

    def _start(self) -> Host:
        """Build the host on the running loop (once)."""
        if self.host is None:
            from .plugins import get_registry
            from .settings import get_settings

            settings = get_settings()
            registry = get_registry()
            protocols = registry.enabled_protocols(settings.protocols)
            self.host = ApplicationHost(settings, registry, protocols, alias=self.alias)
        return self.host

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """Serve one ASGI connection."""
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        servers = self._scope_servers()
        serve = servers.get(kind)
        if serve is None:
            served = ", ".join(repr(name) for name in (*sorted(servers), "lifespan"))
            raise ValueError(
                f"ChannelsApplication was given an ASGI scope of type {kind!r}; it serves "
                f"{served} scopes (a protocol must be installed and enabled in "
                "CHANNELS['PROTOCOLS'] for its scopes to be served)."
            )
        await serve(self._start(), scope, receive, send)

    async def close(self) -> None:
        """Cancel the work in flight and stop taking replies from the layer."""
        host, self.host = self.host, None
        if host is not None:
            await host.close()

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                try:
                    self._start()
                except Exception as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
