"""What a host counts, for an observer (a metrics plugin) to read when it likes.

The :class:`~channels_core.host.Host` counts in plain integers where it already does the work
(reply channels opened and closed, events emitted, refusals, receives); what would cost every
message more (replies, consumer run times, layer send times) only once an observer asked for
it with :meth:`HostCounters.observe`. ``host.counters`` is the host's :class:`HostCounters`;
:meth:`HostCounters.snapshot` copies everything into a :class:`CountersSnapshot`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dispatch import Timing
    from .host import Host
    from .layers import LayerStats


def reply_family(name: str) -> str:
    """The prefix a reply channel was opened with: ``http.response`` for
    ``http.response.AbCd!x1y2``."""
    return name.partition("!")[0].rpartition(".")[0]


def count(counts: dict[str, int], key: str) -> None:
    """Add one to ``counts[key]``. A plain dict: a ``Counter``'s ``+= 1`` costs four times more."""
    try:
        counts[key] += 1
    except KeyError:
        counts[key] = 1


@dataclass(frozen=True)
class CountersSnapshot:
    """What a host had counted at one moment (:meth:`HostCounters.snapshot`).

    Every count only grows, from the host's start. By reply-channel prefix (``http.response``,
    ``websocket.send``: one per connection for most protocols): ``opened`` and ``closed``
    (:meth:`Host.open_reply`, :meth:`Host.close_reply`). By channel: ``emitted`` (events given
    to :meth:`Host.emit`, routed or not), ``refused`` (events and sends the layer refused:
    :class:`~channels_core.exceptions.EventRefused`) and ``received`` (:meth:`Host.receive`).
    By reply-channel prefix, ``dropped``: messages through the layer dropped because their
    connection's client did not read what it was sent (:mod:`channels_core.flow`).
    What costs the per-message path more is counted once an observer asked for it
    (:meth:`HostCounters.observe`), and empty (or None) before: ``replies``, the messages
    handed to the handlers of the reply channels opened since, by prefix, whether sent from
    this process or through the layer; ``consumers``, the run time of each in-process consumer
    by its dotted name; ``layer_send``, the time each send to the layer took (both
    :class:`~channels_core.dispatch.Timing` histograms, bucket bounds in
    ``channels_core.dispatch.TIMING_BUCKETS``). ``in_flight`` and ``draining`` are the host's
    at that moment. ``CountersSnapshot()`` is a host's before it counted anything.
    """

    opened: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)
    replies: dict[str, int] = field(default_factory=dict)
    emitted: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, Timing] = field(default_factory=dict)
    layer_send: Timing | None = None
    in_flight: int = 0
    draining: bool = False


class HostCounters:
    """What a host has counted, for an observer to read when it likes: ``host.counters``.

    The host counts in plain integers where it already does the work, always; reading them
    is :meth:`snapshot`, from the host's loop. What would cost every message more (a call per
    reply, two clock reads per consumer run and per layer send) waits until an observer calls
    :meth:`observe`.
    """

    def __init__(self, host: Host) -> None:
        self._host = host
        self._opened: dict[str, int] = {}
        self._closed: dict[str, int] = {}
        self._replies: dict[str, int] = {}
        self._emitted: dict[str, int] = {}
        self._refused: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        self._received: dict[str, int] = {}

    @property
    def observed(self) -> bool:
        """Whether :meth:`observe` was called: replies, consumers and layer sends measured."""
        return self._host._send_timing is not None

    def observe(self) -> None:
        """From now on, for the rest of the host's life, also count the replies of the reply
        channels opened from now on, and time each in-process consumer's run and each send to
        the layer. Calling it again changes nothing."""
        from .dispatch import Timing

        host = self._host
        if host._send_timing is None:
            host._send_timing = Timing()
        if host._dispatcher is not None and host._dispatcher.timings is None:
            host._dispatcher.timings = {}

    def snapshot(self) -> CountersSnapshot:
        """A copy of everything counted so far; see :class:`CountersSnapshot`."""
        from .routing import _consumer_name

        host = self._host
        consumers: dict[str, Timing] = {}
        timings = host._dispatcher.timings if host._dispatcher is not None else None
        for consumer, timing in (timings or {}).items():
            name = _consumer_name(consumer)
            if name in consumers:  # two consumers of one name (lambdas) are added up
                merged = consumers[name]
                merged.counts = [a + b for a, b in zip(merged.counts, timing.counts, strict=True)]
                merged.total += timing.total
            else:
                consumers[name] = timing.copy()
        send_timing = host._send_timing
        return CountersSnapshot(
            opened=dict(self._opened),
            closed=dict(self._closed),
            replies=dict(self._replies),
            emitted=dict(self._emitted),
            refused=dict(self._refused),
            dropped=dict(self._dropped),
            received=dict(self._received),
            consumers=consumers,
            layer_send=send_timing.copy() if send_timing is not None else None,
            in_flight=host.in_flight,
            draining=host.draining,
        )

    async def layer_stats(self) -> LayerStats:
        """The statistics of the host's channel layer as a whole: messages pending, the age
        of the oldest, sends refused at capacity (group sends' drops included) and messages
        dropped undecodable."""
        return await self._host._layer.stats()
