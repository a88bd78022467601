"""channels-ticker: an event source without a socket, a tick every interval."""

__version__ = "0.1.0"
