"""channels-udp: UDP datagrams as ``udp.receive`` events, replies on ``udp.send!…``."""

__version__ = "0.1.0"
