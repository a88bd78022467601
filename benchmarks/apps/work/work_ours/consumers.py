"""The consumers of the processes benchmark: CPU work, then an HTTP answer or an echo."""

from cpu_work import work

from channels_http.consumers import AsyncHttpConsumer
from channels_ws import AsyncWebsocketConsumer


class Work(AsyncHttpConsumer):
    """``GET /work/``: the work, then 200, text/plain, its hex digest."""

    async def handle(self, body):
        digest = work().encode()
        await self.send_response(200, digest, headers=[(b"content-type", b"text/plain")])


class WorkEcho(AsyncWebsocketConsumer):
    """Accepts (the default ``connect``); for every message, the work, then the message back."""

    async def receive(self, text=None, bytes=None, **kwargs):
        work()
        await self.send(text=text, bytes=bytes)
