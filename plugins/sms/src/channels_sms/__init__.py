"""channels-sms: SMS through a GSM modem on a serial port, as a Channels protocol."""

from .gateway import DeliveryReport, Gateway, GatewaySink, ReceivedSms, SendFailed

__all__ = ["DeliveryReport", "Gateway", "GatewaySink", "ReceivedSms", "SendFailed"]
__version__ = "0.1.0"
