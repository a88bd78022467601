"""channels-metrics: the host's counters as Prometheus metrics, on a listener of their own.

Enable the ``metrics`` protocol (``CHANNELS["PROTOCOLS"]`` or ``channels serve --protocol
metrics``) and give it an address (``--metrics 127.0.0.1:9100``); ``GET /metrics`` there answers
Prometheus's text format. See ``docs/metrics.md``.
"""

__version__ = "0.1.0"
