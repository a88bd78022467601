"""An in-process WebSocket client for a project's tests: no sockets, the real routing.

::

    from channels_ws.testing import WebsocketTestClient

    class ChatTests(SimpleTestCase):
        def test_echo(self):
            with WebsocketTestClient("/chat/lobby/") as client:
                self.assertTrue(client.connect())
                client.send_text("hi")
                self.assertEqual(client.receive(), "lobby: hi")

It runs :class:`~channels_http.application.ChannelsApplication` (or any ASGI application)
on an event loop, as an ASGI server would: ``websocket.connect``, ``receive`` and
``disconnect`` go to the routed consumers through the Dispatcher, in order, and their replies
come back through a reply channel bound in this process. Each method runs the loop until its
answer arrives or the timeout passes (an AssertionError). The open clients of a thread share
one event loop, so several clients can talk to each other through groups; close every client
(``with`` does) to release it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from channels_core.layers import DEFAULT_CHANNEL_LAYER

from .testing import ConnectionClosed

DEFAULT_TIMEOUT = 5.0


class WebsocketTestClient:
    """One WebSocket connection to the routed consumers, driven from synchronous tests.

    :param path: the path, with an optional query string (``/chat/lobby/?token=abc``).
    :param application: the ASGI application; a fresh ``ChannelsApplication(alias)`` by
        default.
    :param headers: request headers (``host: testserver`` is added unless given).
    :param subprotocols: the subprotocols the client offers.
    :param timeout: how long to wait for each answer, in seconds.
    """

    def __init__(
        self,
        path: str = "/",
        application: Any = None,
        alias: str = DEFAULT_CHANNEL_LAYER,
        headers: Iterable[tuple[bytes | str, bytes | str]] = (),
        subprotocols: Iterable[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(
                f"WebsocketTestClient was given the path {path!r}; give an absolute path such "
                "as '/chat/lobby/' (no scheme or host)."
            )
        raw_path, _, query_string = path.partition("?")
        encoded = [(_bytes(name).lower(), _bytes(value)) for name, value in headers]
        if not any(name == b"host" for name, _ in encoded):
            encoded.append((b"host", b"testserver"))
        self.scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": unquote(raw_path),
            "raw_path": raw_path.encode("latin-1"),
            "query_string": query_string.encode("latin-1"),
            "root_path": "",
            "headers": encoded,
            "client": ["127.0.0.1", 50000],
            "server": ["testserver", 80],
            "subprotocols": list(subprotocols),
        }
        self.timeout = timeout
        self._owns_application = application is None
        if application is None:
            from channels_http.application import ChannelsApplication

            application = ChannelsApplication(alias)
        self.application = application
        self.accepted = False
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.loop = _share_loop()
        self._to_app: asyncio.Queue = asyncio.Queue()
        self._from_app: asyncio.Queue = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.closed = False

    # The connection ---------------------------------------------------------------------

    def connect(self) -> bool:
        """Open the connection; True when the consumer accepted it, False when it refused."""
        if self._task is not None:
            raise RuntimeError("connect() was already called on this WebsocketTestClient.")
        self._task = self.loop.create_task(
            self.application(self.scope, self._to_app.get, self._from_app.put)
        )
        self._to_app.put_nowait({"type": "websocket.connect"})
        event = self._next_event()
        if event["type"] == "websocket.accept":
            self.accepted = True
            self.subprotocol = event.get("subprotocol")
            return True
        if event["type"] == "websocket.close":
            self.close_code = event.get("code", 1000)
            return False
        raise AssertionError(f"The application answered websocket.connect with {event!r}.")

    def send_text(self, text: str) -> None:
        """Send a text message."""
        self._send({"type": "websocket.receive", "text": text})

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        self._send({"type": "websocket.receive", "bytes": data})

    def send_json(self, content: Any) -> None:
        """Send *content* as a JSON text message."""
        self.send_text(json.dumps(content))

    def receive(self, timeout: float | None = None) -> str | bytes:
        """The next message the consumer sent (text or bytes).

        Raises :class:`~channels_ws.testing.ConnectionClosed` when the consumer closed the
        connection instead, and AssertionError when nothing came within the timeout.
        """
        self._require_open()
        event = self._next_event(timeout)
        if event["type"] == "websocket.close":
            self.close_code = event.get("code", 1000)
            raise ConnectionClosed(self.close_code)
        if event["type"] != "websocket.send":
            raise AssertionError(f"The application sent {event!r} on an open connection.")
        return event["text"] if event.get("text") is not None else event.get("bytes")

    def receive_json(self, timeout: float | None = None) -> Any:
        """The next message, parsed as JSON."""
        message = self.receive(timeout)
        if not isinstance(message, str):
            raise AssertionError(f"Expected a JSON text message, got the bytes {message!r}.")
        return json.loads(message)

    def close(self, code: int = 1000) -> None:
        """Disconnect with *code*, let the consumers finish (``websocket.disconnect`` runs),
        and release the event loop. Safe to call twice."""
        if self.closed:
            return
        try:
            if self._task is not None and not self._task.done():
                self._to_app.put_nowait({"type": "websocket.disconnect", "code": code})
                self._run(self._task, self.timeout, "finish after websocket.disconnect")
        finally:
            if self._task is not None and not self._task.done():
                self._task.cancel()
                self.loop.run_until_complete(asyncio.gather(self._task, return_exceptions=True))
            if self._owns_application:
                self.loop.run_until_complete(self.application.close())
            self.closed = True
            _release_loop()

    def __enter__(self) -> WebsocketTestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # The loop ---------------------------------------------------------------------------

    def _require_open(self) -> None:
        if not self.accepted:
            raise RuntimeError(
                "The WebSocket is not open: call connect() first and check that it returned True."
            )

    def _send(self, event: dict) -> None:
        self._require_open()
        if self.close_code is not None:
            raise ConnectionClosed(self.close_code)
        self._to_app.put_nowait(event)

    def _next_event(self, timeout: float | None = None) -> dict:
        getter = self.loop.create_task(self._from_app.get())
        try:
            return self._run(getter, self.timeout if timeout is None else timeout, "send anything")
        finally:
            if not getter.done():
                getter.cancel()
                self.loop.run_until_complete(asyncio.gather(getter, return_exceptions=True))

    def _run(self, awaited: asyncio.Future, timeout: float, what: str) -> Any:
        """Run the loop until *awaited* is done (its result), the application fails (its
        exception), or *timeout* passes (AssertionError)."""
        task = self._task
        waiting = {awaited} if task is None or task is awaited else {awaited, task}
        done, _ = self.loop.run_until_complete(
            asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        )
        if awaited in done:
            return awaited.result()
        if task is not None and task in done:
            if task.exception() is not None:
                raise task.exception()
            raise AssertionError(
                f"The application returned without answering (waiting for it to {what})."
            )
        raise AssertionError(f"The application did not {what} within {timeout} s.")


def _share_loop() -> asyncio.AbstractEventLoop:
    """The event loop of this thread's open clients (a new one for the first).

    The clients of one test share it so that a group send from one client's consumer,
    which travels through the layer, reaches the others whichever client runs the loop.
    """
    if _shared.clients == 0:
        _shared.loop = asyncio.new_event_loop()
    _shared.clients += 1
    return _shared.loop


def _release_loop() -> None:
    """A client closed; the last one closes the loop."""
    _shared.clients -= 1
    if _shared.clients == 0:
        _shared.loop.close()
        _shared.loop = None


class _SharedLoop(threading.local):
    clients = 0
    loop: asyncio.AbstractEventLoop | None = None


_shared = _SharedLoop()


def _bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)
