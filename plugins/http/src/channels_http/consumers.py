"""HTTP consumers: answer ``http.request`` from a class with ``handle(body)``.

::

    class Hello(AsyncHttpConsumer):
        async def handle(self, body):
            await self.send_response(200, b"Hello", headers=[(b"content-type", b"text/plain")])

    channel_routing = [route_class(Hello, path=r"^/hello/$")]

Streaming: ``send_headers(...)`` then ``send_body(part, more_body=True)`` as often as needed,
and a last ``send_body(part)``. Long-poll: ``handle`` may return without answering, after
adding ``self.message.reply_channel`` to a :class:`~channels_core.Group`; a later
``Group(...).send({"status": 200, "content": b"..."})`` answers every waiting request, and
no thread or task is held meanwhile.
"""

from __future__ import annotations

from typing import Any

from channels_core.consumers import AsyncConsumer
from channels_core.message import Message


class AsyncHttpConsumer(AsyncConsumer):
    """A class consumer for ``http.request``; subclasses implement ``async def handle(body)``.

    ``self.message`` is the request message and ``self.kwargs`` the route's named groups.
    """

    method_mapping = {"http.request": "http_request"}

    def __init__(self, message: Message, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self._head: dict | None = None

    async def http_request(self, message: Message, **kwargs: Any) -> None:
        """Run :meth:`handle` with the request body."""
        await self.handle(message["body"])

    async def handle(self, body: bytes) -> None:
        """Answer the request; override it."""
        raise NotImplementedError(f"{type(self).__qualname__} must define async def handle().")

    async def send_headers(self, status: int = 200, headers: list | tuple = ()) -> None:
        """Set the status and headers; they go out with the first :meth:`send_body`."""
        self._head = {"status": status, "headers": list(headers)}

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send a part of the body; ``more_body=True`` keeps the response open for more."""
        content = {"content": body, "more_content": more_body}
        if self._head is not None:
            content.update(self._head)
            self._head = None
        await self.message.reply_channel.send(content)

    async def send_response(self, status: int, body: bytes, headers: list | tuple = ()) -> None:
        """Send a whole response at once."""
        await self.send_headers(status, headers)
        await self.send_body(body)
