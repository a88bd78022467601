"""One opened modem device: the thin Twisted adapter that feeds the bytes read to the sans-I/O
:class:`~channels_sms.at.AtStream` and writes one AT command at a time.

:class:`~channels_sms.modem.ModemGateway` opens one per session and reconnects when it raises
:class:`ModemUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from twisted.internet.protocol import Protocol

from .at import AtStream, Garbage, Prompt, Result, Unsolicited

logger = logging.getLogger(__name__)

CTRL_Z = b"\x1a"


class ModemUnavailable(Exception):
    """The modem did not answer in time, or its device went away: reconnect."""


class ModemProtocol(Protocol):
    """The Twisted side of one opened device: bytes to :class:`AtStream`, commands out."""

    def __init__(
        self, device: str, loop: asyncio.AbstractEventLoop, on_unsolicited, cds_pdu: bool = True
    ) -> None:
        self.device = device
        self.loop = loop
        self.on_unsolicited = on_unsolicited
        self.stream = AtStream(cds_pdu=cds_pdu)
        self.lost = loop.create_future()
        # Set once the modem answered the initialisation: a later failure starts the
        # reconnection delays from the beginning again.
        self.ready = False
        self._answer: asyncio.Future | None = None
        self._payload = b""
        self._lock = asyncio.Lock()

    def dataReceived(self, data: bytes) -> None:
        """Sort the bytes into answers, the prompt, notifications and garbage."""
        for event in self.stream.feed(data):
            if isinstance(event, Result):
                if self._answer is not None and not self._answer.done():
                    self._answer.set_result(event)
            elif isinstance(event, Prompt):
                self.transport.write(self._payload + CTRL_Z)
            elif isinstance(event, Unsolicited):
                self.on_unsolicited(event)
            elif isinstance(event, Garbage):
                logger.warning(
                    "Ignored a line from the modem on %s that answers no command: %r",
                    self.device,
                    event.line[:200],
                )

    def connectionLost(self, reason: Any = None) -> None:
        """The device closed or went away: fail the command in flight."""
        error = ModemUnavailable(f"The modem device {self.device} closed or went away.")
        if not self.lost.done():
            self.lost.set_result(None)
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)

    async def command(
        self, command: str, answer_within: float, payload: str | None = None
    ) -> Result:
        """Write *command* (then *payload* and Ctrl-Z at the ``>`` prompt); its answer.

        Raises :class:`ModemUnavailable` when the answer does not come within
        *answer_within* seconds or the device goes away.
        """
        async with self._lock:
            if self.lost.done():
                raise ModemUnavailable(f"The modem device {self.device} is closed.")
            self.stream.begin(command, expects_prompt=payload is not None)
            self._payload = (payload or "").encode("ascii")
            self._answer = self.loop.create_future()
            logger.debug("→ %s %s", self.device, command)
            self.transport.write(command.encode("ascii") + b"\r")
            try:
                async with asyncio.timeout(answer_within):
                    result = await self._answer
            except TimeoutError:
                self.stream.abandon()
                raise ModemUnavailable(
                    f"The modem on {self.device} did not answer {command!r} within "
                    f"{answer_within} s; resetting it."
                ) from None
            logger.debug("← %s %s %s", self.device, result.lines, result.final)
            return result
