"""A GSM modem on a serial port as a :class:`~channels_sms.gateway.Gateway`.

The modem is driven in text mode (``AT+CMGF=1``, the default: ``AT+CSDH=1`` to show header
values, ``AT+CSCS="UCS2"`` so any text survives the serial line, ``AT+CSMP`` for the data
coding and delivery reports; see :mod:`channels_sms.textmode`) or in PDU mode (``AT+CMGF=0``,
which TS 27.005 makes mandatory where text mode is optional; see :mod:`channels_sms.pdu`).

One session at a time runs on the opened device: initialise (``ATZ``, ``ATE0``,
``AT+CMEE=1``, the mode's commands, ``AT+CPMS``, ``AT+CNMI``), read every message left in
storage (``AT+CMGL``, then ``AT+CMGR`` each), then serve: ``+CMTI``/``+CDSI`` notifications
are read with ``AT+CMGR``,
handed to the sink, and only then deleted with ``AT+CMGD``; queued texts are sent with
``AT+CMGS``. A command the modem does not answer in time, or the device going away, ends the
session: the device is closed and opened again with a growing delay, and the text being sent
is sent again (so a text can reach its recipient twice, never zero times).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from channels_core.listeners import SerialListener

from . import pdu, textmode
from .at import Result, Unsolicited
from .device import ModemProtocol, ModemUnavailable
from .gateway import DeliveryReport, Gateway, GatewaySink, ReceivedSms, SendFailed

if TYPE_CHECKING:
    from channels_core.server import ProtocolServer

logger = logging.getLogger(__name__)

MAX_RECONNECT_DELAY = 60.0
# A text the modem leaves unconfirmed this many times (timeouts, disconnections) fails.
MAX_SEND_ATTEMPTS = 3
NOTIFICATION = re.compile(r'^\+(?:CMTI|CDSI):\s*"?(?P<storage>\w*)"?\s*,\s*(?P<index>\d+)')
LISTED = re.compile(r"^\+CMGL:\s*(?P<index>\d+)\s*,")
SUBMITTED = re.compile(r"^\+CMGS:\s*(?P<reference>\d+)")


@dataclass
class _Outgoing:
    """A text waiting to be sent: its parts (PDU mode: ``(hex, length)``; text mode:
    :class:`~channels_sms.textmode.TextPart`), the references of those already sent."""

    to: str
    parts: list
    done: asyncio.Future
    references: list[int] = field(default_factory=list)
    attempts: int = 0


@dataclass
class _Parts:
    """The parts of a concatenated message received so far, by sequence number."""

    parts: dict[int, tuple[int | None, pdu.Deliver]] = field(default_factory=dict)


class ModemGateway(Gateway):
    """A GSM modem on *device*, opened through Twisted's serial port at *baudrate*.

    :param server: the running protocol server (its reactor opens the device).
    :param storage: the message storage to use (``"SM"``: the SIM; ``"ME"``: the modem).
    :param number: the SIM's own number, the ``to`` of received messages (default: what
        ``AT+CNUM`` says, else empty).
    :param command_timeout: seconds a command may take before the modem is reset.
    :param send_timeout: seconds ``AT+CMGS`` may take (the network answers it).
    :param reconnect_delay: seconds before the first reconnection; it doubles up to 60.
    :param poll_interval: seconds between reads of the storage when idle (a modem can drop a
        ``+CMTI``); 0 reads only on notifications and reconnections.
    :param status_reports: ask the network for delivery reports.
    :param cnmi: the ``AT+CNMI`` parameters (new-message and status-report indications).
    :param mode: ``"text"`` (``AT+CMGF=1``) or ``"pdu"`` (``AT+CMGF=0``).
    :param charset: the text-mode character set (``AT+CSCS``): ``"UCS2"`` or ``"GSM"``.
    """

    def __init__(
        self,
        server: ProtocolServer,
        device: str,
        baudrate: int = 115200,
        storage: str = "SM",
        number: str = "",
        command_timeout: float = 10.0,
        send_timeout: float = 60.0,
        reconnect_delay: float = 1.0,
        poll_interval: float = 60.0,
        status_reports: bool = True,
        cnmi: str = "2,1,0,1,0",
        mode: str = "text",
        charset: str = textmode.UCS2,
    ) -> None:
        self.server = server
        self.device = device
        self.name = device
        self.baudrate = baudrate
        self.storage = storage
        self.number = number
        self.command_timeout = command_timeout
        self.send_timeout = send_timeout
        self.reconnect_delay = reconnect_delay
        self.poll_interval = poll_interval
        self.status_reports = status_reports
        self.cnmi = cnmi
        self.mode = mode
        self.charset = charset
        self.loop = server.loop
        self._sink: GatewaySink | None = None
        self._listener: SerialListener | None = None
        self._protocol: ModemProtocol | None = None
        self._task: asyncio.Task | None = None
        self._outbox: collections.deque[_Outgoing] = collections.deque()
        self._notifications: collections.deque[Unsolicited] = collections.deque()
        self._wakeup = asyncio.Event()
        self._partial: dict[tuple[str, int, int], _Parts] = {}
        # Which sent message each part's reference (TP-MR) belongs to, for status reports.
        self._sent: collections.OrderedDict[int, tuple[str, str, int, int]] = (
            collections.OrderedDict()
        )
        self._concat_reference = 0
        # The AT+CSMP first octet and data coding the modem has now (text mode).
        self._csmp: tuple[int, int] | None = None

    # Gateway ----------------------------------------------------------------------------

    async def start(self, sink: GatewaySink) -> None:
        """Open the device (ImproperlyConfigured when it cannot be), then run sessions."""
        self._sink = sink
        await self._open()
        self._task = self.loop.create_task(self._run(), name=f"sms modem {self.device}")

    async def stop(self) -> None:
        """Stop the sessions and close the device; queued texts fail with SendFailed."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close()
        while self._outbox:
            outgoing = self._outbox.popleft()
            if not outgoing.done.done():
                outgoing.done.set_exception(SendFailed("The SMS server stopped before sending."))

    async def send(self, to: str, text: str) -> str:
        """Queue *text* for *to*; its reference (the first part's TP-MR) once sent."""
        if not isinstance(text, str):
            raise SendFailed(f"The text {text!r} is not a string; send text as a str.")
        self._concat_reference = (self._concat_reference + 1) % 256
        try:
            if self.mode == "pdu":
                parts = pdu.encode_submit(to, text, self._concat_reference, self.status_reports)
            else:
                parts = textmode.encode_submit(
                    to, text, self._concat_reference, self.status_reports, self.charset
                )
        except pdu.PduError as error:
            raise SendFailed(str(error)) from None
        outgoing = _Outgoing(to, parts, self.loop.create_future())
        self._outbox.append(outgoing)
        self._wakeup.set()
        return await outgoing.done

    # Sessions ---------------------------------------------------------------------------

    async def _open(self) -> None:
        self._protocol = ModemProtocol(
            self.device, self.loop, self._unsolicited, cds_pdu=self.mode == "pdu"
        )
        self._listener = SerialListener(self.device, self._protocol, self.baudrate)
        await self._listener.start(self.server)

    async def _close(self) -> None:
        if self._listener is not None:
            await self._listener.stop(self.server)
            self._listener = None

    async def _run(self) -> None:
        delay = self.reconnect_delay
        while True:
            try:
                if self._listener is None:
                    await self._open()
                await self._session()
            except ModemUnavailable as error:
                logger.warning("%s", error)
            except Exception as error:
                # Cannot open the device (unplugged), or a bug: log it, never stop retrying.
                logger.warning("The SMS modem on %s is unavailable: %s", self.device, error)
            finally:
                await self._close()
            if self._protocol is not None and self._protocol.ready:
                delay = self.reconnect_delay
            logger.info("Reconnecting to the SMS modem on %s in %.1f s.", self.device, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    async def _command(self, command: str, payload: str | None = None) -> Result:
        timeout = self.send_timeout if payload is not None else self.command_timeout
        return await self._protocol.command(command, timeout, payload)

    async def _initialise(self) -> None:
        if self.mode == "pdu":
            mode_commands = ["AT+CMGF=0"]
        else:
            self._csmp = (pdu.submit_first_octet(self.status_reports, False), 0)
            mode_commands = [
                "AT+CMGF=1",
                "AT+CSDH=1",
                f'AT+CSCS="{self.charset}"',
                self._csmp_command(*self._csmp),
            ]
        commands = [
            "ATZ",
            "ATE0",
            "AT+CMEE=1",
            *mode_commands,
            f'AT+CPMS="{self.storage}","{self.storage}","{self.storage}"',
            f"AT+CNMI={self.cnmi}",
        ]
        for command in commands:
            result = await self._command(command)
            if not result.ok:
                raise ModemUnavailable(
                    f"The modem on {self.device} refused {command!r}: {result.describe_error()}; "
                    "check the SIM and the modem, retrying."
                )
        if not self.number:
            result = await self._command("AT+CNUM")
            for line in result.lines:
                found = re.search(r'"(\+?\d+)"', line)
                if found:
                    self.number = found.group(1)
                    break

    async def _session(self) -> None:
        protocol = self._protocol
        await self._initialise()
        protocol.ready = True
        self._notifications.clear()  # the storage read below covers them
        await self._read_storage()
        logger.info("SMS modem on %s ready (number %s).", self.device, self.number or "unknown")
        while True:
            if protocol.lost.done():
                raise ModemUnavailable(f"The modem device {self.device} closed or went away.")
            if self._notifications:
                await self._notified(self._notifications.popleft())
            elif self._outbox:
                await self._send_next()
            else:
                self._wakeup.clear()
                woken = asyncio.ensure_future(self._wakeup.wait())
                try:
                    done, _ = await asyncio.wait(
                        [woken, protocol.lost],
                        timeout=self.poll_interval or None,
                        return_when="FIRST_COMPLETED",
                    )
                finally:
                    woken.cancel()
                if not done:
                    await self._read_storage()

    def _unsolicited(self, event: Unsolicited) -> None:
        self._notifications.append(event)
        self._wakeup.set()

    # Receiving --------------------------------------------------------------------------

    async def _notified(self, event: Unsolicited) -> None:
        if event.line.startswith("+CDS:"):  # a status report given directly
            try:
                if event.pdu is not None:
                    report = pdu.decode(event.pdu)
                else:
                    report = textmode.read_report(event.line, self.charset)
            except pdu.PduError as error:
                logger.error("Ignored a status report from %s: %s", self.device, error)
                return
            await self._handle(None, report)
            return
        found = NOTIFICATION.match(event.line)
        if found is None:
            logger.warning("Ignored a notification from %s: %r", self.device, event.line)
            return
        await self._read(int(found.group("index")))

    async def _read(self, index: int) -> None:
        """Read message *index* (``AT+CMGR``), hand it on, delete it once accepted."""
        result = await self._command(f"AT+CMGR={index}")
        if result.final.startswith(("+CMS ERROR: 321", "+CME ERROR: 21", "+CME ERROR: 22")):
            # Announced while the storage was being read: already handled and deleted.
            logger.debug("Message %d on %s is gone already.", index, self.device)
            return
        header = next((i for i, line in enumerate(result.lines) if line.startswith("+CMGR:")), None)
        if not result.ok or header is None:
            logger.warning(
                "Reading message %d from %s failed: %s; it stays in storage.",
                index,
                self.device,
                result.describe_error() if not result.ok else f"no +CMGR in {result.lines!r}",
            )
            return
        try:
            if self.mode == "pdu":
                message = pdu.decode("".join(result.lines[header + 1 : header + 2]))
            else:
                message = textmode.read_message(
                    result.lines[header], result.lines[header + 1 :], self.charset
                )
        except pdu.PduError as error:
            logger.error(
                "Message %s on %s cannot be read (%s); it stays in storage.",
                index,
                self.device,
                error,
            )
            return
        await self._handle(index, message)

    async def _read_storage(self) -> None:
        """Read every message in storage (left by a previous run, or missed notifications)."""
        result = await self._command("AT+CMGL=4" if self.mode == "pdu" else 'AT+CMGL="ALL"')
        if not result.ok:
            logger.warning(
                "Listing the messages on %s failed: %s", self.device, result.describe_error()
            )
            return
        # Each +CMGL line is followed by the message's data; AT+CMGR reads it with every
        # header value (text mode lists fewer), so one path reads notified and listed ones.
        for found in filter(None, map(LISTED.match, result.lines)):
            await self._read(int(found.group("index")))

    async def _handle(
        self, index: int | None, message: pdu.Deliver | pdu.Submit | pdu.StatusReport
    ) -> None:
        """Hand a stored (or directly given) message to the sink; delete it once accepted."""
        if isinstance(message, pdu.Submit):
            return  # a text stored for sending by someone else: not ours to take
        if isinstance(message, pdu.StatusReport):
            await self._report(message)
            await self._delete([index])
            return
        if message.concatenation is None:
            await self._received(message.sender, message.text, message.timestamp, [index])
            return
        concatenation = message.concatenation
        key = (message.sender, concatenation.reference, concatenation.total)
        partial = self._partial.setdefault(key, _Parts())
        partial.parts[concatenation.sequence] = (index, message)
        if len(partial.parts) < concatenation.total:
            return
        del self._partial[key]
        ordered = [partial.parts[sequence] for sequence in sorted(partial.parts)]
        text = "".join(part.text for _, part in ordered)
        await self._received(message.sender, text, ordered[0][1].timestamp, [i for i, _ in ordered])

    async def _received(self, sender: str, text: str, timestamp: str, indexes: list) -> None:
        received = ReceivedSms(sender, self.number, text, timestamp, self.name)
        try:
            await self._sink.received(received)
        except Exception as error:
            logger.error(
                "The SMS from %s (storage %s on %s) was not accepted (%s); it stays in storage "
                "and is read again later.",
                sender,
                indexes,
                self.device,
                error,
            )
            return
        await self._delete(indexes)

    async def _delete(self, indexes: list) -> None:
        for index in indexes:
            if index is None:
                continue
            result = await self._command(f"AT+CMGD={index}")
            if not result.ok:
                logger.warning(
                    "Deleting message %d on %s failed: %s; it may be delivered again.",
                    index,
                    self.device,
                    result.describe_error(),
                )

    async def _report(self, report: pdu.StatusReport) -> None:
        to, reference, part, parts = self._sent.get(
            report.reference, (report.recipient, str(report.reference), 1, 1)
        )
        details = {
            "code": report.status,
            "discharged_at": report.discharged_at,
            "part": part,
            "parts": parts,
        }
        await self._sink.status(DeliveryReport(to, reference, report.outcome, details))

    # Sending ----------------------------------------------------------------------------

    async def _send_next(self) -> None:
        outgoing = self._outbox[0]
        outgoing.attempts += 1
        if outgoing.attempts > MAX_SEND_ATTEMPTS:
            self._finish(
                outgoing,
                SendFailed(
                    f"The modem on {self.device} did not confirm the text to {outgoing.to} in "
                    f"{MAX_SEND_ATTEMPTS} attempts."
                ),
            )
            return
        while len(outgoing.references) < len(outgoing.parts):
            result = await self._send_part(outgoing.parts[len(outgoing.references)])
            found = next(filter(None, map(SUBMITTED.match, result.lines)), None)
            if not result.ok or found is None:
                error = result.describe_error() if not result.ok else "no +CMGS reference"
                logger.warning(
                    "Sending a text to %s on %s failed: %s.", outgoing.to, self.device, error
                )
                self._finish(
                    outgoing, SendFailed(f"The modem on {self.device} refused the text: {error}.")
                )
                return
            outgoing.references.append(int(found.group("reference")))
        reference = str(outgoing.references[0])
        for sequence, part_reference in enumerate(outgoing.references, 1):
            self._sent[part_reference] = (outgoing.to, reference, sequence, len(outgoing.parts))
            self._sent.move_to_end(part_reference)
        while len(self._sent) > 256:  # TP-MR is one octet: older entries are ambiguous anyway
            self._sent.popitem(last=False)
        self._finish(outgoing, reference)

    async def _send_part(self, part: tuple[str, int] | textmode.TextPart) -> Result:
        if self.mode == "pdu":
            hex_pdu, length = part
            return await self._command(f"AT+CMGS={length}", payload=hex_pdu)
        # AT+CSMP is changed only when a part needs other values (a long or UCS2 text) and
        # stays until one needs the first ones again, so plain texts cost one command.
        wanted = (part.first_octet, part.dcs)
        if wanted != self._csmp:
            result = await self._command(self._csmp_command(*wanted))
            if not result.ok:
                return result
            self._csmp = wanted
        return await self._command(f'AT+CMGS="{part.recipient}"', payload=part.body)

    @staticmethod
    def _csmp_command(first_octet: int, dcs: int) -> str:
        return f"AT+CSMP={first_octet},{textmode.VALIDITY},0,{dcs}"

    def _finish(self, outgoing: _Outgoing, outcome: str | Exception) -> None:
        self._outbox.popleft()
        if outgoing.done.done():
            return
        if isinstance(outcome, Exception):
            outgoing.done.set_exception(outcome)
        else:
            outgoing.done.set_result(outcome)
