"""The ask protocol without I/O: bytes in, questions out; answers to bytes."""

from __future__ import annotations

from dataclasses import dataclass


class LineTooLong(ValueError):
    """A line (or the bytes waiting for a newline) is longer than the parser accepts."""


@dataclass(frozen=True)
class Question:
    """One question: a non-blank line, decoded as UTF-8 and stripped of outer whitespace."""

    text: str


class QuestionParser:
    """Splits a byte stream into :class:`Question` events, one per non-blank line.

    ``feed(data)`` returns the questions completed by *data*; blank lines are skipped and
    bytes that are not UTF-8 become U+FFFD. A line longer than ``max_line_length`` bytes
    raises :class:`LineTooLong` as soon as the waiting bytes prove it, so a client cannot
    make the server buffer without bound.
    """

    def __init__(self, max_line_length: int) -> None:
        self.max_line_length = max_line_length
        self._buffer = b""

    def feed(self, data: bytes) -> list[Question]:
        """The questions in what arrived so far."""
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        lines = [line.removesuffix(b"\r") for line in lines]
        longest = max((len(line) for line in (*lines, self._buffer)), default=0)
        if longest > self.max_line_length:
            raise LineTooLong(
                f"line too long: more than {self.max_line_length} bytes without a newline"
            )
        texts = (line.decode("utf-8", "replace").strip() for line in lines)
        return [Question(text) for text in texts if text]


def answer_line(answer: str) -> bytes:
    """An answer as one line: line breaks inside it become spaces, so it cannot be taken
    for the answers of the questions after it."""
    return " ".join(answer.splitlines()).encode() + b"\n"
