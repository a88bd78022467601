"""The AT command stream of a GSM modem, without I/O: bytes in, events out.

:class:`AtStream` splits what the modem sends into lines and sorts them: the answer to the
command in flight (its information lines, then the final result ``OK``, ``ERROR``,
``+CMS ERROR: <n>`` or ``+CME ERROR: <n>``), the ``> `` prompt ``AT+CMGS`` waits for,
unsolicited notifications (``+CMTI``, ``+CDSI``, ``+CDS`` with its PDU line in PDU mode, alone
in text mode), and garbage
(anything else arriving while no command waits), which the caller logs and ignores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What the common +CMS ERROR (TS 27.005 3.2.5) and +CME ERROR (TS 27.007 9.2) codes mean.
CMS_ERRORS = {
    1: "unassigned (unallocated) number",
    8: "operator determined barring",
    10: "call barred",
    21: "short message transfer rejected",
    27: "destination out of service",
    28: "unidentified subscriber",
    29: "facility rejected",
    30: "unknown subscriber",
    38: "network out of order",
    41: "temporary failure",
    42: "congestion",
    47: "resources unavailable",
    50: "requested facility not subscribed",
    69: "requested facility not implemented",
    96: "invalid mandatory information",
    111: "protocol error",
    300: "ME failure",
    301: "SMS service of ME reserved",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    315: "SIM wrong",
    316: "SIM PUK required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}
CME_ERRORS = {
    0: "phone failure",
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    20: "memory full",
    21: "invalid index",
    22: "not found",
    23: "memory failure",
    30: "no network service",
    31: "network timeout",
    100: "unknown",
}

UNSOLICITED = ("+CMTI:", "+CDSI:")
PDU_FOLLOWS = "+CDS:"
PROMPT = b">"


@dataclass
class Result:
    """The answer to a command: its information ``lines`` and its final result."""

    command: str
    lines: list[str]
    final: str

    @property
    def ok(self) -> bool:
        """Whether the final result is ``OK``."""
        return self.final == "OK"

    def describe_error(self) -> str:
        """The final result with what its error code means, for log lines and reports."""
        return describe_error(self.final)


@dataclass
class Unsolicited:
    """A notification the modem sent by itself; ``pdu`` is the line after ``+CDS:``."""

    line: str
    pdu: str | None = None


@dataclass
class Prompt:
    """The ``> `` prompt: the modem waits for the PDU and Ctrl-Z."""


@dataclass
class Garbage:
    """A line that is no answer and no known notification."""

    line: str


def describe_error(final: str) -> str:
    """``+CMS ERROR: 330`` → ``+CMS ERROR: 330 (SMSC address unknown)``."""
    for prefix, meanings in (("+CMS ERROR:", CMS_ERRORS), ("+CME ERROR:", CME_ERRORS)):
        if final.startswith(prefix):
            code = final[len(prefix) :].strip()
            meaning = meanings.get(int(code)) if code.isdigit() else None
            return f"{final} ({meaning or 'an error code this plugin does not know'})"
    if final == "ERROR":
        return "ERROR (the modem refused the command without saying why)"
    return final


def is_final(line: str) -> bool:
    """Whether *line* ends a command's answer."""
    return line in ("OK", "ERROR") or line.startswith(("+CMS ERROR:", "+CME ERROR:"))


@dataclass
class AtStream:
    """Sorts a modem's bytes into :class:`Result`, :class:`Prompt`, :class:`Unsolicited`
    and :class:`Garbage` events.

    Call :meth:`begin` when a command is written, then :meth:`feed` with what arrives.
    ``max_line`` bounds a line (a modem never sends one longer than a PDU); longer runs are
    cut and reported as garbage, so a broken device cannot make the buffer grow forever.
    ``cds_pdu`` says whether a PDU line follows ``+CDS:`` (PDU mode) or not (text mode).
    """

    max_line: int = 1024
    cds_pdu: bool = True
    _buffer: bytes = b""
    _command: str | None = None
    _expects_prompt: bool = False
    _lines: list[str] = field(default_factory=list)
    _pdu_for: str | None = None

    @property
    def busy(self) -> bool:
        """Whether a command waits for its answer."""
        return self._command is not None

    def begin(self, command: str, expects_prompt: bool = False) -> None:
        """A command was written: lines from now on are its answer until the final result."""
        self._command = command
        self._expects_prompt = expects_prompt
        self._lines = []

    def abandon(self) -> None:
        """Forget the command in flight (it timed out)."""
        self._command = None
        self._expects_prompt = False

    def feed(self, data: bytes) -> list[Result | Prompt | Unsolicited | Garbage]:
        """The events completed by *data*."""
        self._buffer += data
        events: list[Result | Prompt | Unsolicited | Garbage] = []
        while True:
            stripped = self._buffer.lstrip(b"\r\n")
            if self._expects_prompt and stripped.startswith(PROMPT):
                self._buffer = stripped[1:].lstrip(b" ")
                self._expects_prompt = False
                events.append(Prompt())
                continue
            cut = min(
                (
                    index
                    for index in (self._buffer.find(b"\r"), self._buffer.find(b"\n"))
                    if index >= 0
                ),
                default=-1,
            )
            if cut < 0:
                if len(self._buffer) > self.max_line:
                    events.append(Garbage(self._buffer.decode("ascii", "replace")))
                    self._buffer = b""
                return events
            raw, self._buffer = self._buffer[:cut], self._buffer[cut + 1 :]
            line = raw.decode("ascii", "replace").strip()
            if line:
                event = self._line(line)
                if event is not None:
                    events.append(event)

    def _line(self, line: str) -> Result | Unsolicited | Garbage | None:
        if self._pdu_for is not None:
            header, self._pdu_for = self._pdu_for, None
            return Unsolicited(header, line)
        if line.startswith(UNSOLICITED):
            return Unsolicited(line)
        if line.startswith(PDU_FOLLOWS):
            if not self.cds_pdu:
                return Unsolicited(line)
            self._pdu_for = line
            return None
        if self._command is None:
            return Garbage(line)
        if line == self._command:
            # The modem echoing the command (before ATE0 took effect). Only the exact command:
            # a text-mode message line may well start with "AT".
            return None
        if is_final(line):
            result = Result(self._command, self._lines, line)
            self.abandon()
            return result
        self._lines.append(line)
        return None
