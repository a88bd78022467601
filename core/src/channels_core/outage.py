"""Riding out a layer's outage: sends held in order, receives retried, both within bounds.

A layer raises :class:`~channels_core.exceptions.LayerUnavailable` while its transport (a
Redis server) cannot be reached. A process that lives on (``channels serve``, ``channels
worker``) does not pass that on to its clients for a short outage:

- :class:`OutageBuffer`: the first send that fails begins an outage. It and every later send
  to that layer from this process (:meth:`Host.send <channels_core.host.Host.send>`, and
  ``Channel(name).send()`` in a consumer, and a consumer's ``Group(name).send()``, ``.add()``
  and ``.discard()``) are held in a bounded buffer, in the order they came, and count as
  done; one task makes them, in that order, once the layer answers again
  (retrying with a bounded backoff), and the outage ends when the buffer is empty. A send
  is refused (``LayerUnavailable``, which a protocol answers with WebSocket 1013 or HTTP
  503) only when the buffer is full, or once the outage outlasts its timeout and until the
  layer takes a send again. What was held is kept through that (it was accepted): it is sent
  when the layer is back, and lost only if the process stops first (logged with its count).
  ``CHANNELS["LAYER_OUTAGE"]`` (:class:`~channels_core.limits.OutageLimits`) sets both
  bounds.
- :func:`receive_through_outage`: what a receive loop (a server's replies, a worker's
  channels) does when a receive raises ``LayerUnavailable``: retry with a bounded backoff
  until one succeeds.

Each outage is logged once when it begins and once when it ends, never per retry. When no
outage is on a send costs one check more: :data:`outages` is empty, or the buffer's ``on``
is false.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .exceptions import ChannelFull, LayerClosed, LayerUnavailable
from .limits import SETTING_OUTAGE as SETTING
from .limits import OutageLimits
from .names import check_channel_name, check_group_name
from .serialization import pack, unpack

logger = logging.getLogger(__name__)

#: The backoff of a held send's retries and of a failing receive loop, in seconds: the first
#: delay, doubled after each failure up to the last.
RETRY_FIRST_DELAY = 0.05
RETRY_MAX_DELAY = 0.5

T = TypeVar("T")

#: What a held call is: a send to a channel, or a group's send, add or discard.
SEND, GROUP_SEND, GROUP_ADD, GROUP_DISCARD = "send", "group_send", "group_add", "group_discard"


#: The layers in an outage, each with the buffer that holds this process's sends to it. Empty
#: but during an outage, so that a send checks it with one test of an empty dict.
outages: dict[Any, OutageBuffer] = {}
# The buffer of each layer whose outages this process rides out (a host or a worker made it).
_buffers: dict[Any, OutageBuffer] = {}


def ride_out(
    layer: Any, channel: str, content: dict, error: LayerUnavailable, call: str = SEND
) -> None:
    """A send of *content* to *channel* on *layer* failed with *error*: hold it in the layer's
    buffer (beginning an outage), or raise *error* when no buffer serves this event loop (a
    short-lived loop of sync code, a process that rides out nothing). With *call* another
    held call: *channel* is then a group's name (:meth:`OutageBuffer.send` says what
    *content* holds)."""
    buffer = _buffers.get(layer)
    if buffer is None or not buffer.on_its_loop():
        raise error
    buffer.begin(channel, content, error, call)


def buffer_for(layer: Any, limits: OutageLimits, loop: asyncio.AbstractEventLoop) -> OutageBuffer:
    """The buffer riding out *layer*'s outages on *loop*: the one already made, or a new one."""
    buffer = _buffers.get(layer)
    if buffer is None or buffer.loop is not loop:
        buffer = _buffers[layer] = OutageBuffer(layer, limits, loop)
    return buffer


class OutageBuffer:
    """This process's sends to one layer while it is unreachable; see the module docstring.

    Used on the event loop *loop* only. ``on`` is True from the first failed send until the
    layer takes sends again; ``held`` is how many messages wait, ``held_bytes`` their size.
    """

    def __init__(self, layer: Any, limits: OutageLimits, loop: asyncio.AbstractEventLoop) -> None:
        self.layer = layer
        self.limits = limits
        self.loop = loop
        self.on = False
        self._queue: deque[tuple[str, str, bytes]] = deque()
        self.held_bytes = 0
        self._since = 0.0
        self._expired = False
        self._full_logged = False
        self._sent = 0
        self._flusher: asyncio.Task | None = None
        self._flushed: asyncio.Event | None = None

    @property
    def held(self) -> int:
        """How many messages wait to be sent."""
        return len(self._queue)

    def on_its_loop(self) -> bool:
        """True when called from the event loop this buffer works on."""
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _name(self) -> str:
        """The layer as a sentence begins with it: ``The channel layer 'default'``."""
        alias = getattr(self.layer, "alias", None)
        return f"The channel layer {alias!r}" if alias else "The channel layer"

    def begin(self, channel: str, content: dict, error: LayerUnavailable, call: str = SEND) -> None:
        """A send failed with *error*: begin the outage (unless on), then hold the message.

        Raises *error* when the buffer holds nothing (``buffer`` 0), and what :meth:`send`
        raises when it refuses.
        """
        if not self.limits.buffer:
            raise error
        if not self.on:
            # Held first: a message the buffer cannot take begins no outage.
            self._hold(channel, content, call)
            self.on = True
            self._since = self.loop.time()
            self._expired = False
            self._full_logged = False
            self._sent = 0
            self._flushed = asyncio.Event()
            outages[self.layer] = self
            logger.warning(
                "%s is unreachable (%s); holding this process's sends to it, in order, for up "
                "to %s s and %d bytes (%s) until it is back.",
                self._name(),
                error,
                self.limits.timeout,
                self.limits.buffer,
                SETTING,
            )
            self._flusher = self.loop.create_task(self._flush())
        elif self._expired:
            raise self._expired_error(error)
        else:
            self._hold(channel, content, call)

    async def send(self, channel: str, content: dict, call: str = SEND) -> None:
        """Send during the outage: hold the message behind the others, or refuse it.

        With *call* ``GROUP_SEND``, *channel* is a group and *content* its message; with
        ``GROUP_ADD``, *content* is ``{"channel": ..., "presence": ...}`` (presence None for
        none), and with ``GROUP_DISCARD`` ``{"channel": ...}``.

        Raises ``LayerUnavailable`` when the buffer is full, when the outage has outlasted
        its timeout (until the layer takes a held send again), or when called from another
        event loop.
        """
        if not self.on_its_loop():
            raise LayerUnavailable(
                f"{self._name()} is unreachable, and this send comes from an event loop that "
                "the process's outage buffer does not serve, so it is refused."
            )
        if not self._expired and self.loop.time() - self._since >= self.limits.timeout:
            self._expire()
        if self._expired:
            raise self._expired_error("it still refuses the sends held for it")
        self._hold(channel, content, call)

    def _hold(self, channel: str, content: dict, call: str) -> None:
        # What the layer would have refused at once is refused now, not lost in the flush.
        if call == SEND:
            check_channel_name(channel)
        else:
            check_group_name(channel)
            if call != GROUP_SEND:
                check_channel_name(content["channel"])
        data = pack(content, getattr(self.layer, "max_message_size", None))
        size = len(data) + len(channel)
        if self.held_bytes + size > self.limits.buffer:
            if not self._full_logged:
                self._full_logged = True
                logger.warning(
                    "%s is still unreachable and this process's held sends fill "
                    "%s['buffer'] (%d bytes): sends that do not fit are refused.",
                    self._name(),
                    SETTING,
                    self.limits.buffer,
                )
            raise LayerUnavailable(
                f"{self._name()} is unreachable and the sends held for it meanwhile fill "
                f"{SETTING}['buffer'] ({self.limits.buffer} bytes), so this one is refused: "
                "raise that setting to ride out longer or busier outages."
            )
        self._queue.append((call, channel, data))
        self.held_bytes += size

    def _expired_error(self, error: BaseException | str) -> LayerUnavailable:
        return LayerUnavailable(
            f"{self._name()} has been unreachable for {self.loop.time() - self._since:.1f} s, "
            f"longer than {SETTING}['timeout'] ({self.limits.timeout} s), so sends are refused "
            f"until it is back ({error})."
        )

    def _expire(self) -> None:
        """The outage outlasted its timeout: refuse new sends until the layer is back; keep
        what is held (it was accepted) and go on trying to send it."""
        self._expired = True
        logger.error(
            "%s has been unreachable for more than %s s (%s['timeout']): new sends are refused "
            "until it is back; the %d sends held for it are kept and sent then.",
            self._name(),
            self.limits.timeout,
            SETTING,
            len(self._queue),
        )

    def _drop(self) -> int:
        lost = len(self._queue)
        self._queue.clear()
        self.held_bytes = 0
        return lost

    def _end(self) -> None:
        """The layer took a send again: the outage is over."""
        logger.warning(
            "%s is back after %.1f s; the %d sends held for it meanwhile were sent.",
            self._name(),
            self.loop.time() - self._since,
            self._sent,
        )
        self.on = False
        self._expired = False
        self._flusher = None
        outages.pop(self.layer, None)
        if self._flushed is not None:
            self._flushed.set()

    async def _flush(self) -> None:
        """Send what is held, in order, once the layer takes it; end the outage when empty."""
        queue = self._queue
        delay = RETRY_FIRST_DELAY
        while queue:
            call, channel, data = queue[0]
            try:
                await self._make(call, channel, unpack(data))
            except (LayerUnavailable, ChannelFull):
                if not self._expired and self.loop.time() - self._since >= self.limits.timeout:
                    self._expire()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)
                continue
            except LayerClosed:
                return  # the process is stopping: close() counts what is lost
            except Exception:
                logger.exception(
                    "%s answered a send held through its outage with an error; that send is "
                    "dropped.",
                    self._name(),
                )
            queue.popleft()
            self.held_bytes -= len(data) + len(channel)
            self._sent += 1
            delay = RETRY_FIRST_DELAY
            # The layer is back: sends are held again (behind the rest), not refused.
            self._expired = False
        self._end()

    async def _make(self, call: str, name: str, content: dict) -> None:
        """Make one held call on the layer."""
        layer = self.layer
        if call == SEND:
            await layer.send(name, content)
        elif call == GROUP_SEND:
            await layer.group_send(name, content)
        elif call == GROUP_DISCARD:
            await layer.group_discard(name, content["channel"])
        elif content["presence"] is None:
            await layer.group_add(name, content["channel"])
        else:
            await layer.group_add(name, content["channel"], presence=content["presence"])

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the drain's deadline
        """Wait up to *timeout* seconds for the held sends to go out; True when none is left."""
        if not self._queue or self._flushed is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._flushed.wait()
        except TimeoutError:
            return False
        return not self._queue

    def close(self) -> None:
        """Stop sending what is held; log how many sends that loses."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
        lost = self._drop()
        if lost:
            logger.error(
                "%s is still unreachable as this process stops: the %d sends held for it are lost.",
                self._name(),
                lost,
            )
        self.on = False
        outages.pop(self.layer, None)
        if _buffers.get(self.layer) is self:
            del _buffers[self.layer]


async def receive_through_outage(
    receive: Callable[[], Awaitable[T]], error: LayerUnavailable, what: str
) -> T:
    """``await receive()`` again until it succeeds: a receive loop's answer to *error*.

    Retries with a bounded backoff (:data:`RETRY_FIRST_DELAY` doubling up to
    :data:`RETRY_MAX_DELAY`); logs once when the outage begins and once when it ends. *what*
    names the loop in the log (``"replies for http.response.ab12!"``). ``LayerClosed`` ends
    it, as it ends the loop.
    """
    loop = asyncio.get_running_loop()
    since = loop.time()
    logger.warning("Receiving %s failed (%s); retrying until the layer is back.", what, error)
    delay = RETRY_FIRST_DELAY
    while True:
        await asyncio.sleep(delay)
        try:
            result = await receive()
        except LayerUnavailable:
            delay = min(delay * 2, RETRY_MAX_DELAY)
            continue
        logger.warning("Receiving %s again after %.1f s.", what, loop.time() - since)
        return result
