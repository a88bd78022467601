"""The host's counters as Prometheus metrics, through prometheus_client.

:class:`HostMetrics` holds one prometheus_client metric per figure and brings them up to date
from ``host.counters`` with :meth:`~HostMetrics.refresh`: counters are increased by what the
host counted since the last refresh, gauges are set. Nothing runs per message: the host
counts in plain integers, and these are read only when someone asks.

- One process: a scrape refreshes the metrics, then collects them from a registry of their
  own (never prometheus_client's global one).
- Several processes (``PROMETHEUS_MULTIPROC_DIR`` set, as ``channels serve --processes``
  sets it for its children): prometheus_client writes every metric to files of that
  directory, one set per process. Each process refreshes its own every second (and when it
  is scraped), and a scrape reads every process's files (``MultiProcessCollector``), so any
  process's page shows the sums of all. Gauges that describe one process (``draining``) keep
  a ``pid`` label; those of a layer the processes share (messages pending) take the largest.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from channels_core.counters import CountersSnapshot
from channels_core.dispatch import TIMING_BUCKETS

if TYPE_CHECKING:
    from channels_core.dispatch import Timing

logger = logging.getLogger(__name__)

#: How often each process publishes its figures for the others' scrapes, in seconds.
PUBLISH_INTERVAL = 1.0


def reply_protocols(registry: Any) -> dict[str, str]:
    """The protocol answering each reply-channel prefix (``"http.response"`` → ``"http"``),
    from what the registered protocols declare they consume."""
    return {
        consumed[:-1]: name
        for name, registered in registry.protocols.items()
        for consumed in registered.obj.consumes
        if consumed.endswith("!")
    }


def _increase(metric: Any, now: dict[str, int], before: dict[str, int]) -> None:
    """Increase each labelled child of the counter *metric* by what it gained since *before*."""
    for label, value in now.items():
        gained = value - before.get(label, 0)
        if gained:
            metric.labels(label).inc(gained)


def _observe(child: Any, now: Timing, before: Timing | None) -> None:
    """Add to the histogram *child* the durations *now* holds that *before* did not."""
    previous = before.counts if before is not None else [0] * len(now.counts)
    # The histogram's own bucket counters and sum (not cumulative, the bucket bounds the
    # kernel's): observe() takes one duration, and the kernel hands over counts.
    for bucket, count, old in zip(child._buckets, now.counts, previous, strict=True):
        if count != old:
            bucket.inc(count - old)
    gained = now.total - (before.total if before is not None else 0.0)
    if gained:
        child._sum.inc(gained)


class HostMetrics:
    """The Prometheus metrics of one host; see the module docstring.

    :param host: the running server (its ``counters``, ``registry`` and ``spawn``).
    :param multiprocess_dir: prometheus_client's multiprocess directory, or None for one
        process.

    The metrics themselves are made at the first refresh, in the process that serves: a
    ``--processes`` parent, which only binds the listeners, never writes a file of its own.
    """

    def __init__(self, host: Any, multiprocess_dir: str | None = None) -> None:
        self.host = host
        self.multiprocess = multiprocess_dir is not None
        self.registry = CollectorRegistry()
        if self.multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            MultiProcessCollector(self.registry, path=multiprocess_dir)
        self.protocols = reply_protocols(host.registry)
        # What the metrics already hold: the snapshot and the layer's drops of the last refresh.
        self._last = CountersSnapshot()
        self._dropped: dict[str, int] = {}
        self._built = False
        host.counters.observe()

    def _build(self) -> None:
        """Make the metrics (in this registry with one process; with several, in the files)."""
        self._built = True
        own = None if self.multiprocess else self.registry

        def counter(name: str, documentation: str, label: str) -> Counter:
            return Counter(name, documentation, [label], registry=own)

        def gauge(name: str, documentation: str, mode: str, labels: tuple = ()) -> Gauge:
            return Gauge(name, documentation, labels, registry=own, multiprocess_mode=mode)

        self.accepted = counter(
            "channels_connections_accepted",
            "Connections accepted (reply channels opened), by protocol.",
            "protocol",
        )
        self.closed = counter(
            "channels_connections_closed",
            "Connections closed (reply channels closed), by protocol.",
            "protocol",
        )
        self.open = gauge(
            "channels_connections_open", "Connections open now, by protocol.", "livesum",
            ("protocol",),
        )  # fmt: skip
        self.received = counter(
            "channels_messages_received",
            "Events from clients handed to the kernel, by channel.",
            "channel",
        )
        self.sent = counter(
            "channels_messages_sent",
            "Messages to clients: replies by reply-channel prefix, and messages protocols "
            "took from the layer, by channel.",
            "channel",
        )
        self.refused = counter(
            "channels_events_refused",
            "Events and sends the channel layer refused (full or unreachable), by channel.",
            "channel",
        )
        self.dropped = counter(
            "channels_messages_dropped",
            "Messages dropped: sends and group sends the channel layer refused at capacity "
            "(full), messages no receiver could decode (undecodable), messages for a "
            "connection whose client does not read what it is sent (slow_client).",
            "reason",
        )
        self.consumer_seconds = Histogram(
            "channels_consumer_duration_seconds",
            "Run time of the in-process consumers, by consumer.",
            ["consumer"],
            buckets=TIMING_BUCKETS,
            registry=own,
        )
        self.layer_send_seconds = Histogram(
            "channels_layer_send_duration_seconds",
            "Time a send to the channel layer took.",
            buckets=TIMING_BUCKETS,
            registry=own,
        )
        self.pending = gauge(
            "channels_layer_messages_pending", "Messages waiting in the channel layer.", "livemax"
        )
        self.oldest = gauge(
            "channels_layer_oldest_message_age_seconds",
            "Age of the oldest message waiting in the channel layer (0 when none waits).",
            "livemax",
        )
        self.in_flight = gauge(
            "channels_in_flight",
            "Work in flight: held sections and in-process consumers running.",
            "livesum",
        )
        self.draining = gauge(
            "channels_draining", "1 once the process has begun to drain, else 0.", "liveall"
        )

        self._start_at_zero(getattr(self.host, "protocols", ()))

    def _start_at_zero(self, protocols: Any) -> None:
        """Show the series of the enabled protocols at 0 before anything happened, so that a
        first event is a change (Prometheus's ``rate()`` misses a series' first sample)."""
        for spec in protocols:
            for consumed in spec.consumes:
                if consumed.endswith("!"):
                    self.accepted.labels(spec.name)
                    self.closed.labels(spec.name)
                    self.open.labels(spec.name).set(0)
                    self.sent.labels(consumed[:-1])
            for channel in spec.emits:
                self.received.labels(channel)
                self.refused.labels(channel)
        for reason in ("full", "undecodable", "slow_client"):
            self.dropped.labels(reason)

    async def refresh(self) -> None:
        """Bring every metric up to date with the host's counters and its layer's figures."""
        if not self._built:
            self._build()
        stats = await self.host.counters.layer_stats()
        self.pending.set(stats.pending)
        self.oldest.set(stats.oldest_age or 0.0)
        self.sync(stats.full_count, stats.dropped)

    def sync(self, full: int | None = None, undecodable: int | None = None) -> None:
        """Bring the metrics up to date with ``host.counters`` (and the layer's drop counts,
        when given); synchronous, for a process about to stop."""
        if not self._built:
            self._build()
        now, before = self.host.counters.snapshot(), self._last
        by_protocol = self.protocols.get
        opened = _by(by_protocol, now.opened)
        closed = _by(by_protocol, now.closed)
        _increase(self.accepted, opened, _by(by_protocol, before.opened))
        _increase(self.closed, closed, _by(by_protocol, before.closed))
        for protocol in opened:
            self.open.labels(protocol).set(opened[protocol] - closed.get(protocol, 0))
        _increase(self.received, now.emitted, before.emitted)
        _increase(self.sent, {**now.replies, **now.received}, {**before.replies, **before.received})
        _increase(self.refused, now.refused, before.refused)
        slow_client = sum(now.dropped.values()) - sum(before.dropped.values())
        if slow_client:
            self.dropped.labels("slow_client").inc(slow_client)
        for name, timing in now.consumers.items():
            _observe(self.consumer_seconds.labels(name), timing, before.consumers.get(name))
        if now.layer_send is not None:
            _observe(self.layer_send_seconds, now.layer_send, before.layer_send)
        self.in_flight.set(now.in_flight)
        self.draining.set(1 if now.draining else 0)
        if full is not None:
            dropped = {"full": full, "undecodable": undecodable or 0}
            _increase(self.dropped, dropped, self._dropped)
            self._dropped = dropped
        self._last = now

    async def scrape(self, accept: str | None = None) -> tuple[bytes, str]:
        """The page of a scrape and its content type: every metric, up to date, in the format
        the ``Accept`` header *accept* asks for (Prometheus's text format by default,
        OpenMetrics when asked)."""
        await self.refresh()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type

    async def publish(self, server: Any) -> None:
        """Refresh every second until cancelled (a ``TaskListener``'s ``run``), then once
        more, so the other processes' scrapes see this one's figures, its drain included."""
        try:
            while True:
                try:
                    await self.refresh()
                except Exception:
                    logger.exception("Publishing the metrics failed; trying again.")
                await asyncio.sleep(PUBLISH_INTERVAL)
        finally:
            self.sync()


def _by(protocol_of: Any, counts: dict[str, int]) -> dict[str, int]:
    """Reply-channel counts by prefix, added up by protocol (a prefix no protocol declares
    stands for itself)."""
    added: dict[str, int] = {}
    for prefix, count in counts.items():
        protocol = protocol_of(prefix, prefix)
        added[protocol] = added.get(protocol, 0) + count
    return added
