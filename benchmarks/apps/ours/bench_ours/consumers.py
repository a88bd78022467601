"""The two consumers every contender serves: an HTTP hello and a WebSocket echo."""

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


class Recover(AsyncJsonWebsocketConsumer):
    """``/recover/``: a member of ``bench-room``, whose group keeps history, and recovers on
    reconnect (``recover = True``); ``{"say": n}`` is sent to the room."""

    recover = True
    groups = ["bench-room"]

    async def receive(self, content, **kwargs):
        await self.group_send("bench-room", {"said": content["say"]})
