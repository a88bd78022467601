"""HTTP/2 for Channels: the ``http2`` protocol, riding on the ``http`` protocol's listeners."""

__version__ = "0.1.0"
