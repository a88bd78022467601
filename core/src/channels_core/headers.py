"""Response headers an application gives, checked before a protocol writes them.

A consumer or an ASGI application gives a response's headers as ``[name, value]`` pairs of
bytes or str. Written as given, a value holding CR or LF ends its header line early and
starts headers (or a body) of the application's making: header injection. Every protocol
that writes application-given headers (HTTP/1.1 and HTTP/2 responses, the WebSocket
handshake) passes each pair through :func:`checked_header` and, on
:class:`InvalidHeader`, refuses the response (HTTP: 500) without writing any of it.

The rules are RFC 9110's: a name is a token (section 5.6.2), a value holds no CR, LF or NUL
(section 5.5). A str name or value is encoded as Latin-1, one byte per character, as ASGI
servers do; one that Latin-1 cannot encode is invalid too.

A ``Content-Length`` the application sets must be one number (:func:`declared_length`) and
its body must then be exactly that long (:func:`counted_body`): over HTTP/1.1 a body that
disagrees would break the framing of the next response on the connection, over HTTP/2 the
client would take the stream for malformed (RFC 9113, section 8.1.1). Both raise
:class:`ResponseError`: the response is answered 500 if nothing of it is out yet, else cut
(HTTP/1.1: the connection closed; HTTP/2: the stream reset).
"""

from __future__ import annotations

import re

__all__ = ["InvalidHeader", "ResponseError", "checked_header", "counted_body", "declared_length"]

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FORBIDDEN_IN_VALUE = re.compile(rb"[\r\n\x00]")
# Names already found valid: an application sends the same few names over and over, so most
# are checked by one set look-up. Bounded, so that made-up names cannot grow it without end.
_VALID_NAMES: set[bytes] = set()
_MAX_VALID_NAMES = 512


class InvalidHeader(ValueError):
    """A response header that must not be written; ``name`` is its name as given.

    The message is a sentence naming the header, what is wrong and the fix.
    """

    def __init__(self, name: object, problem: str) -> None:
        shown = name.decode("latin-1") if isinstance(name, bytes) else name
        super().__init__(f"the response header {shown!r} {problem}")
        self.name = name


class ResponseError(ValueError):
    """The application's response cannot be written as given (a body that disagrees with its
    ``Content-Length``); the message says why. Fail the response: 500, or cut it."""


def declared_length(value: bytes, previous: int | None) -> int:
    """The response's ``Content-Length`` header *value* as a number; *previous* is the one
    an earlier ``Content-Length`` header of the same response gave (None: none did).

    Raises :class:`ResponseError` for a value that is not one number, or a second one.
    """
    if previous is not None or not value.isdigit():
        raise ResponseError(
            f"the response sets Content-Length to {value!r}"
            + (" after another one" if previous is not None else "")
            + "; set it once, to the length of the body in bytes, or leave it out"
        )
    return int(value)


def counted_body(declared: int, sent: int, part: int, more: bool) -> int:
    """How much of a body of *declared* bytes is sent once a part of *part* bytes follows the
    *sent* bytes before it; *more* is False for the last part.

    Raises :class:`ResponseError` when the body goes past *declared* or ends short of it.
    """
    total = sent + part
    if total > declared or (not more and total < declared):
        raise ResponseError(
            f"the response set Content-Length {declared} but its body "
            + ("went past it" if total > declared else f"ended after {total} bytes")
            + "; send exactly that many bytes, or leave Content-Length out"
        )
    return total


def _as_bytes(text: object, name: object, what: str) -> bytes:
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidHeader(
                name, f"has a {what} Latin-1 cannot encode ({text!r:.60}); give it as bytes"
            ) from None
    raise InvalidHeader(
        name, f"has a {what} of type {type(text).__name__}; give bytes or str ({text!r:.60})"
    )


def checked_header(name: bytes | str, value: bytes | str) -> tuple[bytes, bytes]:
    """The header *name*: *value* as a pair of bytes, once checked safe to write.

    Raises :class:`InvalidHeader` naming the header when the name is not an RFC 9110 token
    (empty, or with a space, a colon, a control character...), when the value holds CR, LF
    or NUL, or when either is neither bytes nor Latin-1 str. Protocol plugins call it for
    every header an application gives, on the hot path: a set look-up for a name seen
    before and one regular-expression search of the value.
    """
    if type(name) is not bytes:
        name = _as_bytes(name, name, "name")
    if type(value) is not bytes:
        value = _as_bytes(value, name, "value")
    if name not in _VALID_NAMES:
        if TOKEN.fullmatch(name) is None:
            raise InvalidHeader(
                name,
                "has a name that is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ "
                "only, no spaces or colons); fix the name",
            )
        if len(_VALID_NAMES) >= _MAX_VALID_NAMES:
            _VALID_NAMES.clear()
        _VALID_NAMES.add(name)
    if FORBIDDEN_IN_VALUE.search(value) is not None:
        raise InvalidHeader(
            name,
            f"has a value holding CR, LF or NUL ({value!r:.80}), which would inject headers; "
            "remove those characters",
        )
    return name, value
