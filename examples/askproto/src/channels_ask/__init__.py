"""channels-ask: a line-based request/reply protocol server for Channels."""

__version__ = "0.1.0"
