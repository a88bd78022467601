"""The two consumers every contender serves: an HTTP hello and a WebSocket echo."""

from channels_http.consumers import AsyncHttpConsumer
from channels_ws import AsyncWebsocketConsumer


class Hello(AsyncHttpConsumer):
    """``GET /hello/``: 200, text/plain, ``hello``."""

    async def handle(self, body):
        await self.send_response(200, b"hello", headers=[(b"content-type", b"text/plain")])


class Echo(AsyncWebsocketConsumer):
    """Accepts (the default ``connect``) and sends every message back."""

    async def receive(self, text=None, bytes=None, **kwargs):
        await self.send(text=text, bytes=bytes)
