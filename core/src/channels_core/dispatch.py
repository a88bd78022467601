"""The Dispatcher: the one per-message path, shared by the worker and the protocol server.

``await dispatcher.dispatch(channel, content)`` finds the routed consumer and runs it: a sync
consumer in the dispatcher's thread pool (through ``sync_to_async``, so that
``Channel(...).send()`` inside it reaches back to the loop), an async one on the loop. A
consumer that raises is logged and never stops the caller. The path is a router lookup, a
:class:`~channels_core.message.Message` and one call; signals cost one list check each when
nobody listens, and timing the consumers (:attr:`Dispatcher.timings`, switched on for an
observer by ``host.counters.observe()``) one attribute check while it is off.
"""

from __future__ import annotations

import asyncio
import logging
import os
from bisect import bisect_left
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from time import perf_counter
from types import MethodType
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings as django_settings
from django.db import close_old_connections

from .consumers import get_handler
from .layers import DEFAULT_CHANNEL_LAYER
from .message import Message
from .routing import Router, _consumer_name
from .signals import consumer_finished, consumer_started

logger = logging.getLogger(__name__)

# The most handler functions remembered as sync or async; see Dispatcher._is_coroutine_function.
_HANDLER_CACHE_LIMIT = 1000

#: The upper bounds, in seconds, of the buckets of every :class:`Timing`: from 100 µs (a
#: consumer that only replies) to 10 s; a last bucket takes what lasts longer.
TIMING_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
# Most consumer runs (a reply and nothing else) fall in the first bucket: one comparison
# finds it, where bisecting the bounds costs seven times more (benchmarks/cost.py).
_FIRST_BOUND = TIMING_BUCKETS[0]


class Timing:
    """A histogram of durations: how many fell in each bucket, and their sum in seconds.

    ``counts[i]`` counts the durations at most ``TIMING_BUCKETS[i]`` and above the bound
    before it; ``counts[-1]`` those above every bound (so the counts are not cumulative, as
    Prometheus's are). Kept on the event loop's thread, without a lock.
    """

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(TIMING_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one duration of *seconds*."""
        if seconds <= _FIRST_BOUND:
            self.counts[0] += 1
        else:
            self.counts[bisect_left(TIMING_BUCKETS, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        """How many durations were observed."""
        return sum(self.counts)

    def copy(self) -> Timing:
        """A copy that later observations leave unchanged."""
        copied = Timing()
        copied.counts = list(self.counts)
        copied.total = self.total
        return copied


def _listened() -> bool:
    """True when a receiver is connected to ``consumer_started`` or ``consumer_finished``."""
    # ``Signal.receivers`` is a plain list: checking it is the cheapest "does anyone listen",
    # and with nobody listening the consumer runs without the context manager around it.
    return bool(consumer_started.receivers or consumer_finished.receivers)


@contextmanager
def _signalled(consumer: Any, message: Message) -> Iterator[None]:
    """Send ``consumer_started`` and ``consumer_finished`` around a consumer, if anyone listens."""
    if consumer_started.receivers:
        consumer_started.send(sender=consumer, channel=message.channel.name, message=message)
    error = None
    try:
        yield
    except BaseException as caught:
        error = caught
        raise
    finally:
        if consumer_finished.receivers:
            consumer_finished.send(
                sender=consumer, channel=message.channel.name, message=message, error=error
            )


def _run_sync(consumer: Any, handler: Any, message: Message, kwargs: dict, use_db: bool) -> None:
    """Run a sync consumer in a pool thread, as Django runs a view: stale connections closed."""
    if use_db:
        close_old_connections()
    try:
        if _listened():
            with _signalled(consumer, message):
                handler(message, **kwargs)
        else:
            handler(message, **kwargs)
    finally:
        if use_db:
            close_old_connections()


def _first_timing(timings: dict[Any, Timing], consumer: Any) -> Timing:
    """The new :class:`Timing` of *consumer*'s first run."""
    timing = timings[consumer] = Timing()
    return timing


class Dispatcher:
    """Runs the consumer routed for each message.

    :param router: the :class:`~channels_core.routing.Router` to match messages with.
    :param alias: the layer alias the messages came from (``message.channel`` uses it).
    :param threads: the size of the thread pool for sync consumers (None: Python's default).
    :param thread_initializer: called in each thread of the pool when it starts (the testing
        helpers give those threads the test's database connections).
    :param close_connections: whether sync consumers close stale database connections before
        and after, as Django does around a request (None: when Django is configured; the
        testing helpers say False, since they share the test's connections).
    """

    def __init__(
        self,
        router: Router,
        alias: str = DEFAULT_CHANNEL_LAYER,
        threads: int | None = None,
        *,
        thread_initializer: Callable[[], None] | None = None,
        close_connections: bool | None = None,
    ) -> None:
        self.router = router
        self.alias = alias
        self.executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="consumer", initializer=thread_initializer
        )
        self.in_flight = 0
        #: The run time of each consumer (a :class:`Timing` by consumer), while an observer
        #: wants it (``host.counters.observe()`` sets a dict); None costs each message
        #: one check.
        self.timings: dict[Any, Timing] | None = None
        # Set by drain() while it waits, resolved when the last consumer in flight finishes:
        # the per-message path only checks it for None.
        self._drained: asyncio.Future | None = None
        # Whether a handler is ``async def``, by function: asking asgiref costs more than the
        # rest of the dispatch, and a function's answer does not change.
        self._is_async: dict[Any, bool] = {}
        # Without Django settings there are no database connections to close.
        if close_connections is None:
            close_connections = django_settings.configured or bool(
                os.environ.get("DJANGO_SETTINGS_MODULE")
            )
        self._use_db = close_connections
        self._run_sync = sync_to_async(_run_sync, thread_sensitive=False, executor=self.executor)

    def _is_coroutine_function(self, consumer: Any, handler: Any) -> bool:
        # Only functions that outlive the message are remembered: a function consumer (the
        # routing holds it) and a class consumer's method (a new bound method per message, of
        # the class's function). A wrapper made per message (channel_session) is asked anew,
        # so the cache never holds on to a message.
        if handler is consumer:
            function = handler
        elif type(handler) is MethodType:
            function = handler.__func__
        else:
            return iscoroutinefunction(handler)
        try:
            return self._is_async[function]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable
            return iscoroutinefunction(handler)
        is_async = iscoroutinefunction(handler)
        # Bounded all the same, for a get_handler() that makes new methods.
        if len(self._is_async) >= _HANDLER_CACHE_LIMIT:
            self._is_async.clear()
        self._is_async[function] = is_async
        return is_async

    async def dispatch(self, channel: str, content: dict, *, reraise: bool = False) -> bool:
        """Run the consumer routed for *content* on *channel*; False when no route matches.

        A consumer's exception is logged with the channel, the consumer and the message's
        keys, and not raised (the caller keeps serving) unless *reraise* is true, as the
        testing helpers ask. Cancellation propagates.
        """
        found = self.router.match(channel, content)
        if found is None:
            return False
        consumer, kwargs = found
        self.in_flight += 1
        timings = self.timings
        if timings is not None:
            started = perf_counter()
        try:
            message = Message(content, channel, self.alias)
            handler = get_handler(consumer, message, kwargs)
            if not self._is_coroutine_function(consumer, handler):
                await self._run_sync(consumer, handler, message, kwargs, self._use_db)
            elif _listened():
                with _signalled(consumer, message):
                    await handler(message, **kwargs)
            else:
                await handler(message, **kwargs)
        except Exception:
            if reraise:
                raise
            logger.exception(
                "Consumer %s raised on channel %r (message keys: %s); still serving.",
                _consumer_name(consumer),
                channel,
                sorted(content),
            )
        finally:
            self.in_flight -= 1
            if timings is not None:
                # Timing.observe, written out: a method call more per message is what this
                # path cannot spare (see benchmarks/README.md, channels-metrics).
                seconds = perf_counter() - started
                timing = timings.get(consumer) or _first_timing(timings, consumer)
                if seconds <= _FIRST_BOUND:
                    timing.counts[0] += 1
                else:
                    timing.counts[bisect_left(TIMING_BUCKETS, seconds)] += 1
                timing.total += seconds
            if not self.in_flight and self._drained is not None:
                if not self._drained.done():
                    self._drained.set_result(None)
                self._drained = None
        return True

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the server's interface
        """Wait up to *timeout* seconds for the running consumers; True when none is left."""
        if not self.in_flight:
            return True
        loop = asyncio.get_running_loop()
        # One future for every drain() waiting on this loop; one left by a drain() on another
        # loop that timed out has no callbacks left, so resolving it later is harmless.
        if self._drained is None or self._drained.get_loop() is not loop:
            self._drained = loop.create_future()
        done, _ = await asyncio.wait((self._drained,), timeout=timeout)
        return bool(done)

    def close(self) -> None:
        """Shut the thread pool down without waiting for threads still running a consumer."""
        self.executor.shutdown(wait=False, cancel_futures=True)
