"""The same two consumers, written for Django Channels 4.3."""

from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from cpu_work import work


class Work(AsyncHttpConsumer):
    """``GET /work/``: the work, then 200, text/plain, its hex digest."""

    async def handle(self, body):
        digest = work().encode()
        await self.send_response(200, digest, headers=[(b"content-type", b"text/plain")])


class WorkEcho(AsyncWebsocketConsumer):
    """Accepts (the default ``connect``); for every message, the work, then the message back."""

    async def receive(self, text_data=None, bytes_data=None):
        work()
        await self.send(text_data=text_data, bytes_data=bytes_data)
