"""The same two consumers, written for Django Channels 4.3."""

from urllib.parse import parse_qs

from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer


class Hello(AsyncHttpConsumer):
    """``GET /hello/``: 200, text/plain, ``hello``."""

    async def handle(self, body):
        await self.send_response(200, b"hello", headers=[(b"content-type", b"text/plain")])


class Echo(AsyncWebsocketConsumer):
    """Accepts (the default ``connect``) and sends every message back."""

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class Flood(AsyncWebsocketConsumer):
    """``/flood/?mib=N`` (benchmarks/reliability.py): accepts, then sends N MiB (default 100)
    in 64 KiB binary messages, whether or not the client reads them."""

    async def connect(self):
        await self.accept()
        query = parse_qs(self.scope["query_string"].decode("latin-1"))
        chunk = b"x" * 65536
        for _ in range(int(query.get("mib", ["100"])[0]) * 16):
            await self.send(bytes_data=chunk)
