"""The UDP benchmark's project: one echo consumer on ``udp.receive``."""
