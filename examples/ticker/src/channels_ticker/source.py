"""The event source: a task that emits a ``ticker.tick`` event every interval.

It runs in a :class:`~channels_core.listeners.TaskListener`, so the server starts it with
the listeners and cancels it when it drains. A tick already handed to its consumer is not
cut short: it runs as work in flight (``server.spawn`` under ``server.hold()``), which the
drain waits for; the cancellation only stops the ticks after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels_core.exceptions import EventRefused

from .schedule import Schedule

logger = logging.getLogger(__name__)

TICK = "ticker.tick"


class Ticker:
    """Emits ``{"count": n, "at": unix_time, "name": name}`` on ``ticker.tick``.

    Each tick is handed on before the next is due, so ticks reach their consumer in order;
    a consumer slower than the interval delays the ticks after it instead of piling them up.
    """

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.unrouted_logged = False
        self.refusing = False

    def describe(self) -> str:
        """What the start-up log says is listening."""
        return f"ticker {self.name!r} every {self.interval:g} s"

    async def run(self, server: Any) -> None:
        """Tick until cancelled (the server drains)."""
        loop = server.loop
        schedule = Schedule(self.interval, loop.time())
        while True:
            await asyncio.sleep(schedule.wait(loop.time()))
            count = schedule.tick(loop.time())
            handed_on = loop.create_future()
            server.spawn(self._emit(server, count, handed_on))
            # Cancelling this wait (the drain) leaves the tick itself to finish.
            await asyncio.wait((handed_on,))

    async def _emit(self, server: Any, count: int, handed_on: asyncio.Future) -> None:
        content = {"count": count, "at": time.time(), "name": self.name}
        try:
            with server.hold():
                routed = await server.emit(TICK, content)
        except EventRefused as error:
            if not self.refusing:
                logger.warning(
                    "The layer refused tick %d (%s); ticks are dropped until it takes them "
                    "again. Run more workers or raise the layer's capacity.",
                    count,
                    error,
                )
            self.refusing = True
            return
        finally:
            handed_on.set_result(None)
        if self.refusing:
            logger.info("The layer takes ticks again, from tick %d.", count)
            self.refusing = False
        if not routed and not self.unrouted_logged:
            self.unrouted_logged = True
            logger.warning(
                "No consumer is routed for %s, so ticks are dropped; add route(%r, consumer) "
                "to the routing (logged once).",
                TICK,
                TICK,
            )
