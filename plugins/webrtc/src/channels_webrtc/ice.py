"""ICE configuration: which STUN/TURN servers a peer uses and which host addresses it gathers.

aiortc takes its STUN and TURN servers from ``RTCConfiguration(iceServers=...)``: ``None``
means its default public STUN server, ``[]`` means none. It has no setting for the *host*
addresses it gathers candidates on: ``aioice.ice.Connection.gather_candidates`` asks the
module function ``aioice.ice.get_host_addresses``, which lists every interface's address but
the loopback one.

This module is the one place that changes that. :func:`gathering_on` wraps
``aioice.ice.get_host_addresses`` (once per process, the first time it is used) with a
function that returns the addresses chosen for the current asyncio context, and the
original's list when none were chosen. The choice lives in a :class:`~contextvars.ContextVar`,
so it is per peer, not per process: gathering runs inside ``setLocalDescription``, in tasks
that inherit the context of the code that awaits it. The server answers each offer inside
``gathering_on(host_addresses)``, and the test client makes its offers inside
``gathering_on(["127.0.0.1"])``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

_chosen: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "channels_webrtc_host_addresses", default=None
)


def _install() -> None:
    """Wrap ``aioice.ice.get_host_addresses`` once; see the module docstring."""
    original = aioice.ice.get_host_addresses
    if getattr(original, "channels_webrtc_wrapper", False):
        return

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        chosen = _chosen.get()
        if chosen is None:
            return original(use_ipv4, use_ipv6)
        return [address for address in chosen if (use_ipv6 if ":" in address else use_ipv4)]

    get_host_addresses.channels_webrtc_wrapper = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = get_host_addresses


@contextmanager
def gathering_on(addresses: Iterable[str] | None) -> Iterator[None]:
    """Gather host candidates only on *addresses* for peers set up inside the block.

    ``None`` keeps aioice's choice (every interface but loopback). Wrap the
    ``setLocalDescription`` call, which is where aiortc gathers.
    """
    _install()
    token = _chosen.set(None if addresses is None else tuple(addresses))
    try:
        yield
    finally:
        _chosen.reset(token)


def ice_server(entry: str | Mapping[str, Any]) -> RTCIceServer:
    """An :class:`RTCIceServer` from a URL (``"stun:stun.example.org:3478"``) or a dict with
    ``urls`` and, for TURN, ``username`` and ``credential``."""
    if isinstance(entry, str):
        return RTCIceServer(urls=entry)
    return RTCIceServer(
        urls=entry["urls"], username=entry.get("username"), credential=entry.get("credential")
    )


def configuration(ice_servers: Sequence[str | Mapping[str, Any]] | None) -> RTCConfiguration:
    """The peer configuration: *ice_servers* (None: aiortc's default STUN server; []: none)."""
    if ice_servers is None:
        return RTCConfiguration()
    return RTCConfiguration(iceServers=[ice_server(entry) for entry in ice_servers])
