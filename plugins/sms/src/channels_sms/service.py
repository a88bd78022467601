"""The ``sms`` protocol in the ``channels serve`` process: a gateway bound to the channels.

Received messages become ``sms.receive`` events (in-process: the routed consumer runs; worker
mode: the event goes on the layer) before the gateway may acknowledge them. Messages on
``sms.send`` are taken from the layer (at most ``max_pending`` at a time), sent through the
gateway, and their fate reported on ``sms.status``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import TYPE_CHECKING, Any

from channels_core.exceptions import NoRoute

from .gateway import DeliveryReport, Gateway, GatewaySink, ReceivedSms, SendFailed

if TYPE_CHECKING:
    from channels_core.server import ProtocolServer

logger = logging.getLogger(__name__)

RECEIVE, SEND, STATUS = "sms.receive", "sms.send", "sms.status"


class SmsService(GatewaySink):
    """Binds *gateway* to the server's channels; its ``start``/``stop`` are a
    :class:`~channels_core.listeners.ServiceListener`'s."""

    def __init__(self, gateway: Gateway, max_pending: int = 100) -> None:
        self.gateway = gateway
        self.max_pending = max_pending
        self.server: ProtocolServer | None = None
        self._taker: asyncio.Task | None = None
        self._sending: dict[asyncio.Task, dict] = {}
        self._room: asyncio.Event | None = None
        # The ``id`` a consumer gave each sent text, by reference, for its delivery reports.
        self._ids: collections.OrderedDict[str, Any] = collections.OrderedDict()

    async def start(self, server: ProtocolServer) -> None:
        """Start the gateway, then take messages from ``sms.send``."""
        self.server = server
        self._room = asyncio.Event()
        self._room.set()
        await self.gateway.start(self)
        self._taker = server.loop.create_task(self._take(), name="sms.send receiver")

    async def stop(self, server: ProtocolServer) -> None:
        """Stop taking sends; put the texts not yet sent back on ``sms.send``; stop the gateway."""
        if self._taker is not None:
            self._taker.cancel()
            await asyncio.gather(self._taker, return_exceptions=True)
        unsent = list(self._sending.values())
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self.gateway.stop()
        for content in unsent:
            try:
                await server.send(SEND, content)
            except Exception as error:
                logger.error(
                    "Lost the unsent SMS to %r while stopping: %s", content.get("to"), error
                )
        if unsent:
            logger.warning(
                "Stopped with %d SMS not yet sent; they are back on %s (a memory layer loses "
                "them with this process).",
                len(unsent),
                SEND,
            )

    # GatewaySink --------------------------------------------------------------------------

    async def received(self, message: ReceivedSms) -> None:
        """Emit ``sms.receive``; raise NoRoute when in-process mode has no route for it, and
        EventRefused when the layer refuses it: either way the modem keeps the message."""
        if not await self.server.emit(RECEIVE, message.content()):
            raise NoRoute(
                f"no consumer is routed for {RECEIVE}; add route({RECEIVE!r}, a_consumer) to "
                "the routing"
            )

    async def status(self, report: DeliveryReport) -> None:
        """Emit ``sms.status`` for a delivery report."""
        extra = {"id": self._ids[report.reference]} if report.reference in self._ids else {}
        await self._status(
            {
                "to": report.to,
                "reference": report.reference,
                "status": report.status,
                **report.details,
                **extra,
            }
        )

    # Sending ------------------------------------------------------------------------------

    async def _take(self) -> None:
        while True:
            await self._room.wait()
            content = await self.server.receive(SEND)
            task = self.server.loop.create_task(self._send(content))
            self._sending[task] = content
            task.add_done_callback(self._sent)
            if len(self._sending) >= self.max_pending:
                self._room.clear()

    def _sent(self, task: asyncio.Task) -> None:
        self._sending.pop(task, None)
        if len(self._sending) < self.max_pending:
            self._room.set()

    async def _send(self, content: Any) -> None:
        extra = {"id": content["id"]} if isinstance(content, dict) and "id" in content else {}
        to = content.get("to") if isinstance(content, dict) else None
        try:
            missing = [
                key for key in ("to", "text") if not isinstance(content, dict) or key not in content
            ]
            if missing:
                raise SendFailed(
                    f"The {SEND} message lacks {', '.join(missing)}; send "
                    "{'to': '+4915112345678', 'text': 'Hello'}."
                )
            reference = await self.gateway.send(to, content["text"])
        except SendFailed as error:
            logger.warning("The SMS to %r failed: %s", to, error)
            await self._status(
                {"to": to, "reference": None, "status": "failed", "error": str(error), **extra}
            )
            return
        if extra:
            self._ids[reference] = extra["id"]
            while len(self._ids) > 256:  # references are one octet: older ones are reused
                self._ids.popitem(last=False)
        await self._status({"to": to, "reference": reference, "status": "sent", **extra})

    async def _status(self, content: dict) -> None:
        try:
            await self.server.emit(STATUS, {**content, "modem": self.gateway.name})
        except Exception:
            logger.exception("Reporting on %s failed: %r", STATUS, content)
