"""The gateway interface: what carries SMS between Channels and the phone network.

The ``sms`` protocol talks to one :class:`Gateway`. :class:`~channels_sms.modem.ModemGateway`
(a GSM modem on a serial port) is the one this distribution ships; an HTTP SMS provider is
another gateway: its :meth:`~Gateway.send` calls the provider's API, and its webhook view
hands each incoming message to :meth:`GatewaySink.received`.

The contract, for any gateway:

- :meth:`Gateway.start` is called with a :class:`GatewaySink` when ``channels serve`` starts;
  :meth:`Gateway.stop` when it drains.
- :meth:`Gateway.send` sends one text and returns its reference (what status reports name),
  or raises :class:`SendFailed` with a sentence saying why. It may wait (a modem that is
  being reconnected): messages must not be lost while it waits.
- A received message is given to ``await sink.received(message)``; that returns once the
  message is on the channel layer (or its consumer ran, in-process). Only then may the
  gateway acknowledge it to its source (the modem deletes it from the SIM; a webhook answers
  200), so a message is never lost when the process dies: at worst it is delivered twice.
- A delivery report is given to ``await sink.status(report)``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field


class SendFailed(Exception):
    """A message could not be sent, for good: the sentence says why."""


@dataclass(frozen=True)
class ReceivedSms:
    """A message from the network: becomes an ``sms.receive`` event."""

    sender: str
    to: str
    text: str
    received_at: str
    gateway: str

    def content(self) -> dict:
        """The ``sms.receive`` message."""
        return {
            "from": self.sender,
            "to": self.to,
            "text": self.text,
            "received_at": self.received_at,
            "modem": self.gateway,
        }


@dataclass(frozen=True)
class DeliveryReport:
    """What the network says became of a sent message: becomes an ``sms.status`` event.

    ``reference`` is what :meth:`Gateway.send` returned; ``status`` is ``"delivered"``,
    ``"pending"`` or ``"failed"``; ``details`` are extra keys (the network's status code,
    when it was delivered).
    """

    to: str
    reference: str
    status: str
    details: dict = field(default_factory=dict)


class GatewaySink(abc.ABC):
    """Where a gateway puts what arrives; the ``sms`` protocol implements it."""

    @abc.abstractmethod
    async def received(self, message: ReceivedSms) -> None:
        """Hand *message* to Channels; returns once it is safely accepted."""

    @abc.abstractmethod
    async def status(self, report: DeliveryReport) -> None:
        """Hand a delivery report to Channels."""


class Gateway(abc.ABC):
    """Sends and receives SMS for the ``sms`` protocol. See the module for the contract."""

    name: str = "gateway"

    @abc.abstractmethod
    async def start(self, sink: GatewaySink) -> None:
        """Begin: open connections, pick up messages waiting, report arrivals to *sink*.

        Raise :class:`~channels_core.exceptions.ImproperlyConfigured` when the gateway cannot
        work at all (a device that does not exist, missing credentials).
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop receiving and close; messages not yet sent stay with the caller."""

    @abc.abstractmethod
    async def send(self, to: str, text: str) -> str:
        """Send *text* to *to* and return its reference; :class:`SendFailed` when it cannot.

        Bad input (a number that is not one, a text no alphabet carries) raises
        :class:`SendFailed` at once.
        """
