"""channels-lineecho: a line-based TCP protocol server for Channels."""

__version__ = "1.2.3"
