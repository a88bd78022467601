"""The same two consumers, written for Django Channels 4.3."""

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
