"""The two consumers every contender serves: an HTTP hello and a WebSocket echo."""

from urllib.parse import parse_qs

from channels_http.consumers import AsyncHttpConsumer
from channels_ws import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer


class Hello(AsyncHttpConsumer):
    """``GET /hello/``: 200, text/plain, ``hello``."""

    async def handle(self, body):
        await self.send_response(200, b"hello", headers=[(b"content-type", b"text/plain")])


class Echo(AsyncWebsocketConsumer):
    """Accepts (the default ``connect``) and sends every message back."""

    async def receive(self, text=None, bytes=None, **kwargs):
        await self.send(text=text, bytes=bytes)


class Flood(AsyncWebsocketConsumer):
    """``/flood/?mib=N`` (benchmarks/reliability.py): accepts, then sends N MiB (default 100)
    in 64 KiB binary messages, whether or not the client reads them."""

    async def connect(self, message, **kwargs):
        await self.accept()
        query = parse_qs(message["query_string"].decode("latin-1"))
        chunk = b"x" * 65536
        for _ in range(int(query.get("mib", ["100"])[0]) * 16):
            await self.send(bytes=chunk)


class Recover(AsyncJsonWebsocketConsumer):
    """``/recover/``: a member of ``bench-room``, whose group keeps history, and recovers on
    reconnect (``recover = True``); ``{"say": n}`` is sent to the room."""

    recover = True
    groups = ["bench-room"]

    async def receive(self, content, **kwargs):
        await self.group_send("bench-room", {"said": content["say"]})
