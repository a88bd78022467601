"""The hook implementations: what makes ``sms`` a Channels protocol."""

from __future__ import annotations

import re
from typing import Any

from channels_core import hookimpl
from channels_core.exceptions import ImproperlyConfigured
from channels_core.protocols import (
    ChannelSpec,
    Option,
    ProtocolSpec,
    boolean,
    is_positive_number,
)

from .textmode import CHARSETS

MODES = ("text", "pdu")

NAME = "sms"
RECEIVE, SEND, STATUS = "sms.receive", "sms.send", "sms.status"

OPTIONS = (
    Option(
        "device",
        help="The modem's serial device (a stable path such as /dev/serial/by-id/...).",
        default="/dev/ttyUSB0",
        flags=("--sms-device",),
    ),
    Option(
        "baudrate", help="The serial speed.", default=115200, type=int, flags=("--sms-baudrate",)
    ),
    Option(
        "storage",
        help='Where the modem keeps messages: "SM" (the SIM) or "ME" (the modem).',
        default="SM",
        flags=("--sms-storage",),
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
        flags=("--sms-command-timeout",),
    ),
    Option(
        "send_timeout",
        help="Seconds AT+CMGS may take (the network confirms the text).",
        default=60.0,
        type=float,
        flags=("--sms-send-timeout",),
    ),
    Option(
        "reconnect_delay",
        help="Seconds before reopening a modem that went away; doubles up to 60.",
        default=1.0,
        type=float,
        flags=("--sms-reconnect-delay",),
    ),
    Option(
        "poll_interval",
        help="Seconds between reads of the storage when idle (0: only on notifications).",
        default=60.0,
        type=float,
        flags=("--sms-poll-interval",),
    ),
    Option(
        "status_reports",
        help="Ask the network for delivery reports (on or off).",
        default=True,
        type=boolean,
        flags=("--sms-status-reports",),
    ),
    Option(
        "cnmi",
        help="The AT+CNMI parameters: 2,1,0,1,0 gives +CMTI and +CDS; 2,1,0,2,0 gives +CDSI.",
        default="2,1,0,1,0",
        flags=("--sms-cnmi",),
    ),
    Option(
        "mode",
        help='How the modem is driven: "text" (AT+CMGF=1) or "pdu" (AT+CMGF=0).',
        default="text",
        flags=("--sms-mode",),
    ),
    Option(
        "charset",
        help='The text-mode character set (AT+CSCS): "UCS2" (any text) or "GSM".',
        default="UCS2",
        flags=("--sms-charset",),
    ),
    Option(
        "max_pending",
        help="Texts taken from sms.send and not yet sent, at most.",
        default=100,
        type=int,
        flags=("--sms-max-pending",),
    ),
)

_POSITIVE = ("baudrate", "command_timeout", "send_timeout", "reconnect_delay", "max_pending")


def check_options(options: dict[str, Any]) -> None:
    """Raise ImproperlyConfigured, naming the option, the value and the fix, for a bad one."""
    for name in _POSITIVE:
        value = options[name]
        if not is_positive_number(value):
            raise ImproperlyConfigured(
                f"CHANNELS['OPTIONS']['sms'][{name!r}] is {value!r}; it must be a positive number."
            )
    poll = options["poll_interval"]
    if not is_positive_number(poll, zero=True):
        raise ImproperlyConfigured(
            f"CHANNELS['OPTIONS']['sms']['poll_interval'] is {poll!r}; it must be 0 (never "
            "poll) or a positive number of seconds."
        )
    if not isinstance(options["storage"], str) or not re.fullmatch(r"[A-Z]{2}", options["storage"]):
        raise ImproperlyConfigured(
            f"CHANNELS['OPTIONS']['sms']['storage'] is {options['storage']!r}; use a two-letter "
            'message storage such as "SM" (the SIM) or "ME" (the modem).'
        )
    if not isinstance(options["cnmi"], str) or not re.fullmatch(r"\d(,\d){1,4}", options["cnmi"]):
        raise ImproperlyConfigured(
            f"CHANNELS['OPTIONS']['sms']['cnmi'] is {options['cnmi']!r}; give the AT+CNMI "
            "parameters as digits separated by commas, such as '2,1,0,1,0'."
        )
    for name, allowed in (("mode", MODES), ("charset", CHARSETS)):
        if options[name] not in allowed:
            raise ImproperlyConfigured(
                f"CHANNELS['OPTIONS']['sms'][{name!r}] is {options[name]!r}; use one of "
                f"{', '.join(map(repr, allowed))}."
            )
    if not isinstance(options["device"], str) or not options["device"]:
        raise ImproperlyConfigured(
            f"CHANNELS['OPTIONS']['sms']['device'] is {options['device']!r}; give the modem's "
            "serial device path, such as '/dev/ttyUSB0'."
        )


def listeners(server: Any) -> list:
    """One service: the GSM modem bound to the ``sms`` channels."""
    from channels_core.listeners import ServiceListener

    from .modem import ModemGateway
    from .service import SmsService

    options = server.options[NAME]
    check_options(options)
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
