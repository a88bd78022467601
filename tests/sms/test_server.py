"""The ``sms`` protocol in real ``channels serve`` processes, against a simulated GSM modem on
a pseudo-terminal: texts in and out, long and non-ASCII texts, delivery reports, modem errors,
garbage, silence, unplugging, and a SIGKILL between reading a text and deleting it; in text
mode (the default) and in PDU mode.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from channels_core.names import random_suffix
from channels_core.testing.processes import RunningProcess, start_process
from channels_core.testing.redis import redis_server
from channels_sms.testing import GsmModemSimulator

__all__ = ["redis_server"]  # the fixture, imported for the worker-mode test

HERE = Path(__file__).resolve().parent
CHANNELS = Path(sys.executable).with_name("channels")
READY = r"SMS modem on \S+ ready"
WAIT = 15.0
SENDER = "+4915112345678"


class Project:
    """Runs ``channels serve`` for the SMS test project on the simulated modem's device."""

    def __init__(self, modem: GsmModemSimulator, data: Path, mode: str = "text") -> None:
        self.modem = modem
        self.data = data
        self.mode = mode
        self.env = {
            "DJANGO_SETTINGS_MODULE": "sms_project.settings",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(HERE / "sms_project"), os.environ.get("PYTHONPATH")])
            ),
            "SMS_DATA": str(data),
        }
        self.processes: list[RunningProcess] = []

    def serve(self, *args: str, ready: bool = True) -> RunningProcess:
        """Start ``channels serve`` with short timeouts; wait for the modem to be ready."""
        process = start_process(
            [
                CHANNELS,
                "serve",
                "--sms-device",
                str(self.modem.link),
                "--sms-command-timeout",
                "1",
                "--sms-reconnect-delay",
                "0.1",
                "--sms-mode",
                self.mode,
                *args,
            ],
            env=self.env,
        )
        self.processes.append(process)
        if ready:
            process.wait_for_line(READY, timeout=WAIT)
        return process

    def worker(self) -> RunningProcess:
        """Start ``channels worker`` once it listens."""
        process = start_process([CHANNELS, "worker"], env=self.env)
        self.processes.append(process)
        process.wait_for_line("Worker listening on", timeout=WAIT)
        return process

    def records(self, name: str) -> list[dict]:
        """What the consumers recorded on *name* (``receive`` or ``status``)."""
        path = self.data / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def wait_records(self, name: str, predicate, what: str) -> list[dict]:
        """Poll the records until *predicate(records)* holds; AssertionError after WAIT s."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            records = self.records(name)
            if predicate(records):
                return records
            time.sleep(0.02)
        raise AssertionError(f"Timed out waiting for {what}; {name} records: {self.records(name)}")

    def close(self) -> None:
        for process in self.processes:
            process.__exit__(None, None, None)


def count_lines(process: RunningProcess, pattern: str) -> int:
    """How many output lines of *process* match *pattern* so far."""
    return sum(1 for line in list(process.lines) if re.search(pattern, line))


def wait_lines(process: RunningProcess, pattern: str, count: int) -> None:
    """Wait until *count* output lines match *pattern*."""
    deadline = time.monotonic() + WAIT
    while count_lines(process, pattern) < count:
        assert time.monotonic() < deadline, f"no {count} lines {pattern!r}:\n{process.output}"
        time.sleep(0.02)


@pytest.fixture
def modem(tmp_path):
    """A simulated GSM modem behind ``tmp_path/modem``."""
    with GsmModemSimulator(tmp_path / "modem") as simulator:
        yield simulator


@pytest.fixture(params=["text", "pdu"])
def mode(request):
    """The modem's mode: each scenario runs in both."""
    return request.param


@pytest.fixture
def project(modem, tmp_path, mode):
    """The SMS test project on the simulated modem; its processes are killed at the end."""
    running = Project(modem, tmp_path, mode)
    try:
        yield running
    finally:
        running.close()


LONG = "The quick brown fox jumps over the lazy dog; {curly} [square] €uro. " * 6
UNICODE = "Grüße aus Köln — Привет, мир! 😀 你好"
LONG_UNICODE = "Ж " + UNICODE * 3  # three UCS2 parts, a surrogate pair near a boundary
TEXTS = ("Hello", LONG, UNICODE, LONG_UNICODE)


def test_texts_in_and_out_long_and_unicode_with_delivery_reports(project, modem, mode):
    server = project.serve()
    assert modem.text_mode == (mode == "text")
    modem.garbage("#!GARBAGE LINE")
    for text in TEXTS:
        modem.deliver(SENDER, text)
    modem.wait_for(lambda: len(modem.sent_texts()) == len(TEXTS), WAIT, "the echoes")
    assert sorted(modem.sent_texts()) == sorted((SENDER, f"echo: {text}") for text in TEXTS)
    received = project.records("receive")
    assert sorted(record["text"] for record in received) == sorted(TEXTS)
    for record in received:
        assert record["from"] == SENDER
        assert record["to"] == modem.number  # from AT+CNUM
        assert record["modem"] == str(modem.link)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record["received_at"])
    parts = len(modem.sent)
    assert sum(m.concatenation is not None for m in modem.sent) == 5  # 3 + 2 parts
    statuses = project.wait_records(
        "status",
        lambda records: sum(r["status"] == "delivered" for r in records) == parts,
        "a delivery report per part",
    )
    sent = {r["id"]: r for r in statuses if r["status"] == "sent"}
    assert set(sent) == {f"re {text[:20]}" for text in TEXTS}
    delivered = [r for r in statuses if r["status"] == "delivered"]
    assert {r["reference"] for r in delivered} == {r["reference"] for r in sent.values()}
    assert {r["id"] for r in delivered} == set(sent)
    assert all(r["to"] == SENDER and r["code"] == 0 for r in delivered)
    modem.wait_for(lambda: not modem.storage, WAIT, "every message deleted")
    if mode == "text":  # parts with a header (fo 113), UCS2 (dcs 8), set when needed
        assert {"AT+CSMP=113,170,0,0", "AT+CSMP=113,170,0,8", "AT+CSMP=49,170,0,8"} <= set(
            modem.commands
        )
        assert 'AT+CSCS="UCS2"' in modem.commands
    assert "answers no command: '#!GARBAGE LINE'" in server.output
    assert server.terminate() == 0


def test_bad_sends_and_modem_errors_fail_only_their_message(project, modem):
    server = project.serve()
    modem.fail_next("AT+CMGS", "+CMS ERROR: 330")
    for text in ("refused", "send bytes", "send to a bad number", "send nothing", "fine"):
        modem.deliver(SENDER, text)
    statuses = project.wait_records(
        "status", lambda records: len(records) >= 5, "a status for each send"
    )
    by_id = {record.get("id"): record for record in statuses if record["status"] != "delivered"}
    assert by_id["re refused"]["status"] == "failed"
    assert "+CMS ERROR: 330 (SMSC address unknown)" in by_id["re refused"]["error"]
    assert "is not a string" in by_id["re send bytes"]["error"]
    assert "'call me maybe' is not a phone number" in by_id["re send to a bad number"]["error"]
    assert "lacks text" in by_id["re send nothing"]["error"]
    assert by_id["re fine"]["status"] == "sent"
    assert modem.sent_texts() == [(SENDER, "echo: fine")]
    assert "SMSC address unknown" in server.output
    assert server.terminate() == 0


def test_messages_left_in_storage_are_read_at_start_and_stored_reports(project, modem):
    # Arrived while no server ran: no +CMTI reaches anyone, the texts wait on the SIM.
    modem.deliver(SENDER, "waiting", notify=False)
    modem.deliver("+33612345678", LONG, notify=False)
    project.serve("--sms-cnmi", "2,1,0,2,0")  # delivery reports stored, announced by +CDSI
    received = project.wait_records("receive", lambda records: len(records) == 2, "both texts")
    assert sorted(record["text"] for record in received) == sorted(("waiting", LONG))
    modem.wait_for(lambda: len(modem.sent_texts()) == 2, WAIT, "both echoes")
    statuses = project.wait_records(
        "status",
        lambda records: sum(r["status"] == "delivered" for r in records) == len(modem.sent),
        "delivery reports read from storage",
    )
    assert {r["to"] for r in statuses} == {SENDER, "+33612345678"}
    modem.wait_for(lambda: not modem.storage, WAIT, "texts and reports deleted")
    assert any(command.startswith("AT+CMGR=") for command in modem.commands)


def test_a_text_survives_sigkill_between_reading_and_deleting(project, modem):
    server = project.serve()
    modem.hold("AT+CMGD")
    [index] = modem.deliver(SENDER, "quiet, survive")
    project.wait_records("receive", lambda records: len(records) == 1, "the text handled")
    modem.wait_for(lambda: f"AT+CMGD={index}" in modem.commands, WAIT, "the delete")
    server.terminate(signal.SIGKILL)
    assert index in modem.storage  # the delete never happened
    modem.release()
    project.serve()
    received = project.wait_records("receive", lambda records: len(records) == 2, "redelivery")
    assert [record["text"] for record in received] == ["quiet, survive"] * 2  # at least once
    modem.wait_for(lambda: not modem.storage, WAIT, "the text deleted after redelivery")


def test_unplugging_and_silence_reconnect_and_lose_nothing(project, modem):
    server = project.serve()
    # Unplugged while a text is being sent: it is sent again once the modem is back.
    modem.hold("AT+CMGS")
    modem.deliver(SENDER, "queued")
    modem.wait_for(lambda: "AT+CMGS" in " ".join(modem.commands), WAIT, "the send")
    modem.unplug()
    wait_lines(server, r"closed or went away", 1)
    wait_lines(server, r"SMS modem on \S+ is unavailable", 1)  # the device is gone
    modem.release()
    modem.replug()
    modem.wait_for(lambda: (SENDER, "echo: queued") in modem.sent_texts(), WAIT, "the resend")
    wait_lines(server, READY, 2)

    # A modem that stops answering is reset: once it answers again, the text is read.
    modem.silent = True
    modem.deliver(SENDER, "after silence")
    wait_lines(server, r"did not answer 'AT\+CMGR=\d+' within 1\.0 s", 1)
    wait_lines(server, r"did not answer 'ATZ'", 1)
    modem.silent = False
    modem.wait_for(
        lambda: (SENDER, "echo: after silence") in modem.sent_texts(), WAIT, "the late echo"
    )
    assert [r["text"] for r in project.records("receive")] == ["queued", "after silence"]
    assert server.terminate() == 0
    assert "Traceback" not in server.output
    assert "destroyed" not in server.output


@pytest.mark.parametrize("mode", ["text"])
def test_worker_mode_puts_texts_on_the_layer_before_deleting_them(project, modem, redis_server):
    project.env.update(SMS_REDIS_URL=redis_server, SMS_PREFIX=f"sms.{random_suffix(8)}:")
    server = project.serve("--mode", "worker")
    # No worker yet: the text is on Redis (and off the SIM) before anyone consumes it.
    modem.deliver(SENDER, "to the layer")
    modem.wait_for(lambda: not modem.storage, WAIT, "the text deleted once on the layer")
    server.terminate(signal.SIGKILL)
    project.worker()
    project.wait_records("receive", lambda records: len(records) == 1, "the worker's consumer")
    # The echo the worker sent waits on sms.send until a server takes it.
    project.serve("--mode", "worker")
    modem.wait_for(lambda: modem.sent_texts() == [(SENDER, "echo: to the layer")], WAIT, "echo")
    project.wait_records(
        "status",
        lambda records: sorted(r["status"] for r in records) == ["delivered", "sent"],
        "the statuses through the worker",
    )


def test_the_gsm_character_set_carries_plain_texts_and_refuses_the_rest(tmp_path, modem):
    project = Project(modem, tmp_path)
    try:
        server = project.serve("--sms-charset", "GSM")
        for text in ("price: 5 €", "plain @ $ text", "Grüße"):
            modem.deliver(SENDER, text)
        statuses = project.wait_records("status", lambda r: len(r) >= 3, "three statuses")
        by_id = {record["id"]: record for record in statuses if record["status"] != "delivered"}
        # € needs the escape to the extension table, which cancels a text typed in text mode.
        assert by_id["re price: 5 €"]["status"] == "failed"
        assert "'€', which the GSM character set cannot carry" in by_id["re price: 5 €"]["error"]
        assert by_id["re plain @ $ text"]["status"] == "sent"
        assert by_id["re Grüße"]["status"] == "sent"  # UCS2 data coding: typed in hex
        assert sorted(record["text"] for record in project.records("receive")) == sorted(
            ("price: 5 €", "plain @ $ text", "Grüße")
        )
        assert sorted(modem.sent_texts()) == [
            (SENDER, "echo: Grüße"),
            (SENDER, "echo: plain @ $ text"),
        ]
        assert 'AT+CSCS="GSM"' in modem.commands
        assert server.terminate() == 0
    finally:
        project.close()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--sms-device", "/nonexistent/modem"), "Cannot open the serial device '/nonexistent"),
        (("--sms-command-timeout", "0"), r"\['command_timeout'\] is 0.0; it must be a positive"),
        (("--sms-cnmi", "yes"), "give the AT\\+CNMI parameters as digits"),
        (("--sms-charset", "latin1"), r"\['charset'\] is 'latin1'; use one of 'UCS2', 'GSM'"),
    ],
)
@pytest.mark.parametrize("mode", ["text"])
def test_bad_settings_stop_start_up_with_a_clear_sentence(project, args, error):
    server = project.serve(*args, ready=False)
    assert server.wait(WAIT) != 0
    assert re.search(error, server.output), server.output
