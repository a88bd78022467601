"""A simulated GSM modem on a pseudo-terminal, for testing code that uses the ``sms`` protocol.

::

    from channels_sms.testing import GsmModemSimulator

    with GsmModemSimulator(tmp_path / "modem") as modem:
        # run `channels serve --protocol sms --sms-device <tmp_path>/modem` ...
        modem.deliver("+4915112345678", "Hello")          # stored on the SIM, +CMTI sent
        modem.wait_for(lambda: modem.sent, what="a reply")
        assert modem.sent_texts() == [("+4915112345678", "echo: Hello")]

The simulator answers like a real modem, in PDU mode (``AT+CMGF=0``) or in text mode
(``AT+CMGF=1``, with ``AT+CSDH``, ``AT+CSCS`` "UCS2" or "GSM", ``AT+CSMP``, and ``+CMS ERROR:
305`` for a bad text-mode parameter where PDU mode says 304), switching on ``AT+CMGF`` as a
modem does: echo until ``ATE0``, ``OK``/``ERROR``
and ``+CMS ERROR``/``+CME ERROR`` answers, messages stored with indexes (``AT+CMGR``,
``AT+CMGL``, ``AT+CMGD``), ``+CMTI`` for new messages, the ``> `` prompt of ``AT+CMGS``, a
``+CMGS`` reference per part, and delivery reports (``+CDS``, or ``+CDSI`` with the report
stored) as ``AT+CNMI`` asked. Tests can inject errors (:meth:`fail_next`), garbage lines
(:meth:`garbage`), silence (:attr:`silent`), hold commands unanswered (:meth:`hold`), and
unplug the modem and plug it back (:meth:`unplug`, :meth:`replug`): the device path is a
symlink to the current pseudo-terminal, re-pointed on each plug.

It runs in a thread of the test process; every wait has a timeout.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from . import pdu, textmode

ANSWER_PAUSE = 0.005
SMSC = "+15550009999"
# What a modem has after ATZ: SMS-SUBMIT with a relative validity period, 7-bit data coding.
DEFAULT_CSMP = (17, 167, 0, 0)


# What AT+CMGL lists, by mode: PDU mode's stat numbers, text mode's words (4: all).
_LISTS = {
    False: {"": 4, "0": 0, "1": 1, "4": 4},
    True: {"": 0, '"REC UNREAD"': 0, '"REC READ"': 1, '"ALL"': 4},
}


def _quoted(argument: str) -> str | None:
    """What is between the quotes of a quoted argument, or None if it is not quoted."""
    found = re.fullmatch(r'"([^"]*)"', argument)
    return found.group(1) if found else None


class GsmModemSimulator:
    """A GSM modem behind the pseudo-terminal that *link* points to.

    :param link: the path the code under test opens (a symlink, re-pointed on :meth:`replug`).
    :param number: the SIM's own number (``AT+CNUM``).
    :param report_delay: seconds between confirming a text and its delivery report.
    """

    def __init__(
        self, link: str | os.PathLike, number: str = "+15550001111", report_delay: float = 0.05
    ) -> None:
        self.link = Path(link)
        self.number = number
        self.report_delay = report_delay
        #: Messages in storage: index → (status, PDU hex, TPDU length). Status as in
        #: AT+CMGL: 0 unread, 1 read.
        self.storage: dict[int, tuple[int, str, int]] = {}
        #: Every SMS-SUBMIT the modem sent, decoded, in order.
        self.sent: list[pdu.Submit] = []
        #: Every command line received, in order.
        self.commands: list[str] = []
        #: Answer nothing at all (a hung modem).
        self.silent = False
        #: The TP-ST of the delivery reports sent (0: delivered).
        self.report_status = 0
        # What ATZ and a replug reset: echo, AT+CNMI, AT+CMGF (text_mode), AT+CSCS, AT+CSMP.
        self.echo = True
        self.cnmi = [0, 0, 0, 0, 0]
        self.text_mode = False
        self.charset = textmode.GSM
        self.csmp = DEFAULT_CSMP
        self._failures: list[tuple[str, str]] = []
        self._holds: list[str] = []
        self._reference = 0
        self._concat_reference = 0
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self._changed = threading.Condition(threading.RLock())
        self._master: int | None = None
        self._slave: int | None = None
        self._input = b""
        # What takes the text typed after the "> " prompt, until Ctrl-Z.
        self._body: Callable[[str], None] | None = None
        self._thread: threading.Thread | None = None
        self._running = False

    # Plugging ---------------------------------------------------------------------------

    def start(self) -> GsmModemSimulator:
        """Plug the modem in: open a pseudo-terminal, point the link at it, start answering."""
        self.replug()
        return self

    def replug(self) -> None:
        """Plug the modem (back) in on a fresh pseudo-terminal; the modem restarts (echo on),
        the messages in storage stay."""
        self.unplug()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        temporary = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        temporary.symlink_to(os.ttyname(slave))
        os.replace(temporary, self.link)
        with self._changed:
            self._master, self._slave = master, slave
            self._reset()
            self._input = b""
            self._body = None
            self._running = True
        self._thread = threading.Thread(target=self._serve, name="gsm-modem-simulator", daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        """Pull the modem out: the device node goes away and reads of the open one fail."""
        with self._changed:
            self._running = False
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._changed:
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None
            self._timers.clear()
            self._changed.notify_all()
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()

    close = unplug

    def __enter__(self) -> GsmModemSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # What tests do ----------------------------------------------------------------------

    def deliver(self, sender: str, text: str, notify: bool = True) -> list[int]:
        """A text from *sender* arrives: stored (in parts if long), announced with ``+CMTI``
        when *notify* and ``AT+CNMI`` asked for it. Returns the storage indexes."""
        with self._changed:
            self._concat_reference = (self._concat_reference + 1) % 256
            indexes = []
            for hex_pdu, length in pdu.encode_deliver(
                sender, text, reference=self._concat_reference, smsc=SMSC
            ):
                index = self._store(0, hex_pdu, length)
                indexes.append(index)
                if notify and self.cnmi[1] == 1:
                    self._write(f'\r\n+CMTI: "SM",{index}\r\n')
            return indexes

    def garbage(self, line: str) -> None:
        """Send a line that means nothing."""
        with self._changed:
            self._write(f"\r\n{line}\r\n")

    def fail_next(self, prefix: str, final: str = "ERROR") -> None:
        """Answer the next command starting with *prefix* with *final* (``+CMS ERROR: 330``)
        instead of doing it; for ``AT+CMGS`` the error comes after the PDU, as on a modem."""
        with self._changed:
            self._failures.append((prefix.upper(), final))

    def hold(self, prefix: str) -> None:
        """Leave commands starting with *prefix* unanswered and undone until :meth:`release`."""
        with self._changed:
            self._holds.append(prefix.upper())

    def release(self) -> None:
        """Stop holding commands (those held so far stay unanswered, as if lost)."""
        with self._changed:
            self._holds.clear()

    def sent_texts(self) -> list[tuple[str, str]]:
        """``(recipient, text)`` of every text sent, long ones joined from their parts."""
        with self._changed:
            texts: list[tuple[str, str]] = []
            open_parts: dict[tuple[str, int], list[str]] = {}
            for message in self.sent:
                if message.concatenation is None:
                    texts.append((message.recipient, message.text))
                    continue
                key = (message.recipient, message.concatenation.reference)
                parts = open_parts.setdefault(key, [])
                parts.append(message.text)
                if len(parts) == message.concatenation.total:
                    texts.append((message.recipient, "".join(open_parts.pop(key))))
            return texts

    def wait_for(
        self, predicate: Callable[[], object], timeout: float = 10.0, what: str = ""
    ) -> object:
        """Wait until *predicate()* is true (checked on every change); TimeoutError after
        *timeout* seconds naming *what*."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"The simulated modem waited {timeout} s for {what or predicate}; "
                        f"commands so far: {self.commands[-20:]}"
                    )
                self._changed.wait(min(remaining, 0.1))

    # The modem --------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._changed:
                if not self._running:
                    return
                master = self._master
                self._run_timers()
            readable, _, _ = select.select([master], [], [], 0.02)
            if not readable:
                continue
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            with self._changed:
                self._input += data
                self._process()
                self._changed.notify_all()

    def _run_timers(self) -> None:
        now = time.monotonic()
        due = [timer for timer in self._timers if timer[0] <= now]
        for timer in due:
            self._timers.remove(timer)
            timer[1]()
        if due:
            self._changed.notify_all()

    def _write(self, text: str) -> None:
        if self._master is None:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._master, text.encode("ascii"))

    def _reset(self) -> None:
        self.echo = True
        self.cnmi = [0, 0, 0, 0, 0]
        self.text_mode = False
        self.charset = textmode.GSM
        self.csmp = DEFAULT_CSMP

    def _process(self) -> None:
        while True:
            if self._body is not None:
                end = min(
                    (i for i in (self._input.find(b"\x1a"), self._input.find(b"\x1b")) if i >= 0),
                    default=-1,
                )
                if end < 0:
                    return
                body, terminator = self._input[:end], self._input[end : end + 1]
                self._input = self._input[end + 1 :]
                take, self._body = self._body, None
                if terminator == b"\x1a":  # ESC cancels the text
                    take(body.decode("ascii", "replace"))
                continue
            end = self._input.find(b"\r")
            if end < 0:
                return
            line = self._input[:end].decode("ascii", "replace").strip()
            self._input = self._input[end + 1 :]
            if line:
                self._command(line)

    def _answer(self, *lines: str, final: str = "OK") -> None:
        time.sleep(ANSWER_PAUSE)  # a modem takes a moment; it also splits the writes
        self._write("".join(f"\r\n{line}\r\n" for line in (*lines, final)))

    def _command(self, line: str) -> None:
        self.commands.append(line)
        if self.silent:
            return
        if self.echo:
            self._write(line + "\r")
        upper = line.upper()
        if any(upper.startswith(prefix) for prefix in self._holds):
            return
        for failure in self._failures:
            if upper.startswith(failure[0]):
                self._failures.remove(failure)
                if upper.startswith("AT+CMGS="):
                    # The modem takes the text, then the network refuses it.
                    self._prompt(lambda body, final=failure[1]: self._answer(final=final))
                else:
                    self._answer(final=failure[1])
                return
        self._do(upper)

    def _prompt(self, take: Callable[[str], None]) -> None:
        self._body = take
        self._write("\r\n> ")

    @property
    def _bad_parameter(self) -> str:
        """The +CMS ERROR a modem gives for a bad parameter in the current mode."""
        return "+CMS ERROR: 305" if self.text_mode else "+CMS ERROR: 304"

    def _do(self, upper: str) -> None:
        # The table is keyed by the command up to and including "=", so "ATZ" and "ATZ=1",
        # or "AT+CMGF" and "AT+CMGF=1", are different commands, as on a modem; an argument
        # the command's pattern does not match is answered with ERROR.
        command, equals, argument = upper.partition("=")
        entry = self._COMMANDS.get(command + equals)
        if entry is None or not re.fullmatch(entry[0], argument):
            self._answer(final="ERROR")
            return
        entry[1](self, argument)

    def _ok(self, argument: str) -> None:
        self._answer()

    def _set_mode(self, argument: str) -> None:
        self.text_mode = argument == "1"
        self._answer()

    def _set_charset(self, argument: str) -> None:
        self.charset = textmode.UCS2 if _quoted(argument) == textmode.UCS2 else textmode.GSM
        self._answer()

    def _set_text_parameters(self, argument: str) -> None:
        values = tuple(int(value) for value in argument.split(","))
        if max(values) > 255:
            self._answer(final="+CMS ERROR: 305")
            return
        self.csmp = values
        self._answer()

    def _restart(self, argument: str) -> None:
        self._reset()
        self._answer()

    def _echo_off(self, argument: str) -> None:
        self.echo = False
        self._answer()

    def _echo_on(self, argument: str) -> None:
        self.echo = True
        self._answer()

    def _storage_status(self, argument: str) -> None:
        used = len(self.storage)
        self._answer(f"+CPMS: {used},30,{used},30,{used},30")

    def _set_indications(self, argument: str) -> None:
        values = [int(value) for value in argument.split(",")]
        self.cnmi = values + [0] * (5 - len(values))
        self._answer()

    def _own_number(self, argument: str) -> None:
        self._answer(f'+CNUM: "","{self.number}",145')

    def _read_message(self, argument: str) -> None:
        index = int(argument)
        if index not in self.storage:
            self._answer(final="+CMS ERROR: 321")
            return
        self._answer(*self._show("+CMGR: ", index))

    def _list_messages(self, argument: str) -> None:
        wanted = _LISTS[self.text_mode].get(argument)
        if wanted is None:
            self._answer(final=self._bad_parameter)
            return
        lines = []
        for index, (status, _, _) in sorted(self.storage.items()):
            if wanted in (4, status):
                lines += self._show(f"+CMGL: {index},", index)
        self._answer(*lines)

    def _delete_message(self, argument: str) -> None:
        self.storage.pop(int(argument), None)
        self._answer()

    def _send_message(self, argument: str) -> None:
        if self.text_mode:
            self._prompt_text(_quoted(argument))
        elif argument.isdigit():
            self._prompt(lambda body, length=int(argument): self._submit(body.strip(), length))
        else:
            self._answer(final=self._bad_parameter)

    # Command (up to "=") → (the pattern its argument must match, its handler).
    _COMMANDS: ClassVar[dict[str, tuple[str, Callable[[GsmModemSimulator, str], None]]]] = {
        "AT": ("", _ok),
        "AT+CMEE=": ("1", _ok),
        "AT+CMGF=": ("[01]", _set_mode),
        "AT+CSDH=": ("[01]", _ok),
        "AT+CSCS=": (f'"({"|".join((*textmode.CHARSETS, "IRA"))})"', _set_charset),
        "AT+CSMP=": (r"\d{1,3}(,\d{1,3}){3}", _set_text_parameters),
        "ATZ": ("", _restart),
        "ATE0": ("", _echo_off),
        "ATE1": ("", _echo_on),
        "AT+CPMS": ("", _storage_status),
        "AT+CPMS=": (".*", _storage_status),
        "AT+CNMI=": (r"\d(,\d){1,4}", _set_indications),
        "AT+CNUM": ("", _own_number),
        "AT+CMGR=": (r"\d+", _read_message),
        "AT+CMGL": ("", _list_messages),
        "AT+CMGL=": (".*", _list_messages),
        "AT+CMGD=": (r"\d+", _delete_message),
        "AT+CMGS": ("", _send_message),
        "AT+CMGS=": (".*", _send_message),
    }

    def _show(self, prefix: str, index: int) -> list[str]:
        """The lines showing message *index* after *prefix*, in the current mode; it is read
        from then on."""
        status, hex_pdu, length = self.storage[index]
        self.storage[index] = (max(status, 1), hex_pdu, length)
        if not self.text_mode:
            return [f"{prefix}{status},,{length}", hex_pdu]
        values, data = textmode.show_message(pdu.decode(hex_pdu), status, self.charset, SMSC)
        return [f"{prefix}{values}", *([data] if data is not None else [])]

    def _prompt_text(self, recipient: str | None) -> None:
        try:
            if recipient is None:
                raise pdu.PduError("no quoted number")
            pdu.check_number(textmode.decode_string(recipient, self.charset))
        except pdu.PduError:
            self._answer(final="+CMS ERROR: 305")
            return
        first, _, _, dcs = self.csmp
        self._prompt(
            lambda body: self._accept(
                lambda: textmode.read_submit(recipient, first, dcs, body, self.charset)
            )
        )

    def _store(self, status: int, hex_pdu: str, length: int) -> int:
        index = 1
        while index in self.storage:
            index += 1
        self.storage[index] = (status, hex_pdu, length)
        self._changed.notify_all()
        return index

    def _submit(self, hex_pdu: str, length: int) -> None:
        def read() -> pdu.Submit:
            message = pdu.decode(hex_pdu)
            smsc_octets = int(hex_pdu[:2], 16) + 1
            if not isinstance(message, pdu.Submit) or len(hex_pdu) // 2 - smsc_octets != length:
                raise pdu.PduError("not an SMS-SUBMIT of the length given")
            return message

        self._accept(read)

    def _accept(self, read: Callable[[], pdu.Submit]) -> None:
        """Send the message *read* makes of what was typed; a bad parameter error if it
        cannot."""
        try:
            message = read()
        except (pdu.PduError, ValueError):
            self._answer(final=self._bad_parameter)
            return
        self._reference = self._reference % 255 + 1
        reference = self._reference
        self.sent.append(message)
        self._answer(f"+CMGS: {reference}")
        if message.status_report:
            self._timers.append(
                (time.monotonic() + self.report_delay, lambda: self._report(reference, message))
            )

    def _report(self, reference: int, message: pdu.Submit) -> None:
        hex_pdu, length = pdu.encode_status_report(
            reference, message.recipient, self.report_status, smsc=SMSC
        )
        if self.cnmi[3] == 1 and self.text_mode:
            shown = textmode.show_report(pdu.decode(hex_pdu), self.charset)
            self._write(f"\r\n+CDS: {shown}\r\n")
        elif self.cnmi[3] == 1:
            self._write(f"\r\n+CDS: {length}\r\n{hex_pdu}\r\n")
        elif self.cnmi[3] == 2:
            index = self._store(0, hex_pdu, length)
            self._write(f'\r\n+CDSI: "SM",{index}\r\n')
