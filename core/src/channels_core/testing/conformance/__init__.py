"""The channel layer conformance suite: the tests every layer passes.

A layer distribution runs the suite against itself by subclassing :class:`LayerConformance`
in one of its test modules and giving it a ``make_layer`` fixture, the way devpi runs one
storage suite against every backend::

    import pytest
    from channels_core.testing.conformance import LayerConformance
    from channels_mylayer import MyLayer

    class TestMyLayer(LayerConformance):
        @pytest.fixture
        def make_layer(self, my_server):
            def make(**config):
                return MyLayer(hosts=[my_server.address], **config)
            return make

``make_layer`` returns a callable taking the common layer options as keyword arguments
(``expiry``, ``group_expiry``, ``capacity``, ``channel_capacity``, ``max_message_size``) and
returning a new layer, or an awaitable of one when building it needs I/O. Every layer it makes
must start empty (a layer that shares a server between tests flushes or uses a fresh prefix),
and the suite closes each one when its test ends (a second ``close`` must not fail; a
``LayerClosed`` from it is ignored). Each test picks fresh random channel and group names.

What the suite checks: FIFO order per channel; each message delivered once under many
concurrent receivers and senders; cancelled receives lose nothing; expiry; ``capacity`` and
``channel_capacity`` (glob and regex) with ``ChannelFull`` and its count; process-specific
channels, ``new_channel`` and ``receive_prefix``; groups (add, renew, discard, send, expiry,
full members); presence and group history, and delayed messages (kept until due, delivered
once and in due order, retried on a full channel), for a layer with those extensions
(skipped, saying so, for one without); ``flush``; ``close``; ``stats``; and bad input (names,
oversized, non-dict and non-msgpack-safe messages) with the right errors; and that sender
and receiver never share a message object. It uses only the public layer API, so it runs
against an in-process layer and against one backed by a server alike.

Every wait is bounded by :attr:`LayerConformance.receive_timeout`, and "nothing arrives" is
judged by waiting :attr:`LayerConformance.absent_timeout`; a slow backend may raise either in
its subclass. Expiry tests sleep a fraction of a second, so the suite takes a few seconds.
The tests are coroutines marked for pytest-asyncio, so they run in its strict and auto modes.

The suite is one module per concern, each with one part of :class:`LayerConformance`:
:mod:`.channels` (order, concurrency, cancellation), :mod:`.capacity` (expiry, capacity,
options), :mod:`.process` (process-specific channels), :mod:`.groups`, :mod:`.lifecycle`
(flush, close, stats), :mod:`.messages` (bad input, values), :mod:`.history` (presence
and history) and :mod:`.delays` (delayed messages); :mod:`.base` holds the
fixtures and helpers they share.
"""

from __future__ import annotations

from .base import LayerFactory, fresh
from .capacity import CapacityConformance
from .channels import ChannelConformance
from .delays import DelayConformance
from .groups import GroupConformance
from .history import HistoryConformance, PresenceConformance
from .lifecycle import LifecycleConformance
from .messages import BAD_CHANNEL_NAMES, BAD_GROUP_NAMES, MessageConformance
from .process import ProcessChannelConformance

__all__ = [
    "BAD_CHANNEL_NAMES",
    "BAD_GROUP_NAMES",
    "LayerConformance",
    "LayerFactory",
    "fresh",
]


# pytest runs the tests of the last base first, so the parts are listed in reverse of the
# order they run in: channels first, bad input and values last.
class LayerConformance(
    DelayConformance,
    HistoryConformance,
    PresenceConformance,
    MessageConformance,
    LifecycleConformance,
    GroupConformance,
    ProcessChannelConformance,
    CapacityConformance,
    ChannelConformance,
):
    """The conformance tests; subclass it and override the ``make_layer`` fixture."""
