"""The hook implementations: what makes ``sms`` a Channels protocol."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from channels_core import hookimpl
from channels_core.protocols import ChannelSpec, Option, ProtocolSpec

from .textmode import CHARSETS

MODES = ("text", "pdu")

NAME = "sms"
RECEIVE, SEND, STATUS = "sms.receive", "sms.send", "sms.status"
SECONDS = "it must be a positive number of seconds, such as 10."


def _full_match(pattern: str) -> Callable[[str], None]:
    """A validator refusing a string that *pattern* does not match whole."""
    compiled = re.compile(pattern)

    def validate(value: str) -> None:
        if not compiled.fullmatch(value):
            raise ValueError

    return validate


OPTIONS = (
    Option(
        "device",
        help="The modem's serial device (a stable path such as /dev/serial/by-id/...).",
        default="/dev/ttyUSB0",
        flags=("--sms-device",),
        validator=_full_match(r".+"),
        fix="give the modem's serial device path, such as '/dev/ttyUSB0'.",
    ),
    Option(
        "baudrate",
        help="The serial speed.",
        default=115200,
        type=int,
        above=0,
        flags=("--sms-baudrate",),
        fix="it must be a positive number, such as 115200.",
    ),
    Option(
        "storage",
        help='Where the modem keeps messages: "SM" (the SIM) or "ME" (the modem).',
        default="SM",
        flags=("--sms-storage",),
        validator=_full_match(r"[A-Z]{2}"),
        fix='use a two-letter message storage such as "SM" (the SIM) or "ME" (the modem).',
    ),
    Option(
        "number",
        help="The SIM's own number, the 'to' of received messages (default: AT+CNUM's answer).",
        default="",
        flags=("--sms-number",),
    ),
    Option(
        "command_timeout",
        help="Seconds an AT command may take before the modem is reset and reopened.",
        default=10.0,
        type=float,
        above=0,
        flags=("--sms-command-timeout",),
        fix=SECONDS,
    ),
    Option(
        "send_timeout",
        help="Seconds AT+CMGS may take (the network confirms the text).",
        default=60.0,
        type=float,
        above=0,
        flags=("--sms-send-timeout",),
        fix=SECONDS,
    ),
    Option(
        "reconnect_delay",
        help="Seconds before reopening a modem that went away; doubles up to 60.",
        default=1.0,
        type=float,
        above=0,
        flags=("--sms-reconnect-delay",),
        fix=SECONDS,
    ),
    Option(
        "poll_interval",
        help="Seconds between reads of the storage when idle (0: only on notifications).",
        default=60.0,
        type=float,
        minimum=0,
        flags=("--sms-poll-interval",),
        fix="it must be 0 (never poll) or a positive number of seconds.",
    ),
    Option(
        "status_reports",
        help="Ask the network for delivery reports (on or off).",
        default=True,
        type=bool,
        flags=("--sms-status-reports",),
    ),
    Option(
        "cnmi",
        help="The AT+CNMI parameters: 2,1,0,1,0 gives +CMTI and +CDS; 2,1,0,2,0 gives +CDSI.",
        default="2,1,0,1,0",
        flags=("--sms-cnmi",),
        validator=_full_match(r"\d(,\d){1,4}"),
        fix="give the AT+CNMI parameters as digits separated by commas, such as '2,1,0,1,0'.",
    ),
    Option(
        "mode",
        help='How the modem is driven: "text" (AT+CMGF=1) or "pdu" (AT+CMGF=0).',
        default="text",
        flags=("--sms-mode",),
        choices=MODES,
    ),
    Option(
        "charset",
        help='The text-mode character set (AT+CSCS): "UCS2" (any text) or "GSM".',
        default="UCS2",
        flags=("--sms-charset",),
        choices=CHARSETS,
    ),
    Option(
        "max_pending",
        help="Texts taken from sms.send and not yet sent, at most.",
        default=100,
        type=int,
        above=0,
        flags=("--sms-max-pending",),
        fix="it must be a positive whole number, such as 100.",
    ),
)


def listeners(server: Any) -> list:
    """One service: the GSM modem bound to the ``sms`` channels."""
    from channels_core.listeners import ServiceListener

    from .modem import ModemGateway
    from .service import SmsService

    options = server.options[NAME]
    gateway = ModemGateway(
        server,
        options["device"],
        baudrate=options["baudrate"],
        storage=options["storage"],
        number=options["number"],
        command_timeout=options["command_timeout"],
        send_timeout=options["send_timeout"],
        reconnect_delay=options["reconnect_delay"],
        poll_interval=options["poll_interval"],
        status_reports=options["status_reports"],
        cnmi=options["cnmi"],
        mode=options["mode"],
        charset=options["charset"],
    )
    service = SmsService(gateway, max_pending=options["max_pending"])
    return [
        ServiceListener(
            service.start,
            service.stop,
            f"serial:{options['device']}@{options['baudrate']} (GSM modem)",
        )
    ]


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``sms`` protocol: a GSM modem on a serial port."""
    register(
        ProtocolSpec(
            name=NAME,
            listeners=listeners,
            emits=(RECEIVE, STATUS),
            consumes=(SEND,),
            options=OPTIONS,
            description="SMS through a GSM modem on a serial port (AT commands, text or PDU mode).",
        )
    )


@hookimpl
def channels_register_channels(register) -> None:
    """What the modem emits and what consumers send it."""
    register(
        ChannelSpec(
            RECEIVE,
            sent_by="protocol",
            keys=("from", "to", "text", "received_at", "modem"),
            description="An SMS arrived (long texts joined from their parts).",
        )
    )
    register(
        ChannelSpec(
            SEND,
            sent_by="consumer",
            keys=("to", "text"),
            optional_keys=("id",),
            description="Send text to a number; what becomes of it comes on sms.status.",
        )
    )
    register(
        ChannelSpec(
            STATUS,
            sent_by="protocol",
            keys=("to", "reference", "status", "modem"),
            optional_keys=("id", "error", "code", "discharged_at", "part", "parts"),
            description="sent, delivered, pending or failed (with error) for a text sent.",
        )
    )
