"""When the ticks fall, without I/O: the caller passes the clock in, so nothing sleeps."""

from __future__ import annotations


class Schedule:
    """Ticks every *interval* seconds from *start*, counted from 1, without drift.

    Tick *n* is due *n* intervals after *start*, however long handing on the ones before
    took. A tick that comes more than an interval late (a slow consumer, a stalled loop)
    starts the schedule afresh from then, rather than firing the missed ticks in a burst.
    """

    def __init__(self, interval: float, start: float) -> None:
        self.interval = interval
        self.count = 0
        self.due = start + interval

    def wait(self, now: float) -> float:
        """Seconds from *now* until the next tick is due (0 when it already is)."""
        return max(0.0, self.due - now)

    def tick(self, now: float) -> int:
        """The due tick fires at *now*: its count. The next one is then due."""
        self.count += 1
        self.due += self.interval
        if self.due < now:
            self.due = now + self.interval
        return self.count
