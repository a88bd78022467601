"""The line protocol without I/O: bytes in, lines out."""

from __future__ import annotations


class LineTooLong(ValueError):
    """A line (or the bytes waiting for a newline) is longer than the parser accepts."""


class LineParser:
    """Splits a byte stream into lines ending in ``\\n`` (a trailing ``\\r`` is dropped).

    ``feed(data)`` returns the lines completed by *data*. A line longer than
    ``max_line_length`` bytes raises :class:`LineTooLong`, as soon as the waiting bytes prove
    it, so a client cannot make the server buffer without bound.
    """

    def __init__(self, max_line_length: int) -> None:
        self.max_line_length = max_line_length
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The complete lines in what arrived so far, without their line endings."""
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        lines = [line.removesuffix(b"\r") for line in lines]
        longest = max((len(line) for line in (*lines, self._buffer)), default=0)
        if longest > self.max_line_length:
            raise LineTooLong(
                f"line too long: more than {self.max_line_length} bytes without a newline"
            )
        return lines
