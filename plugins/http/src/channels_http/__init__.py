"""channels-http: the HTTP/1.1 protocol server of Channels."""

__version__ = "0.1.0"
