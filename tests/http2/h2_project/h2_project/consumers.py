"""Consumers of the HTTP/2 test project."""

import asyncio
import json
import logging

from channels_http.consumers import AsyncHttpConsumer
from channels_ws import AsyncWebsocketConsumer


class Info(AsyncHttpConsumer):
    """What the consumer was given: version, method, body size, headers."""

    async def handle(self, body):
        message = self.message
        info = {
            "http_version": message["http_version"],
            "method": message["method"],
            "path": message["path"],
            "query_string": message["query_string"].decode(),
            "body_length": len(body),
            "body_sha": __import__("hashlib").sha256(body).hexdigest(),
            "headers": {k.decode(): v.decode() for k, v in message["headers"]},
            "scheme": message["scheme"],
        }
        await self.send_response(
            200, json.dumps(info).encode(), headers=[(b"content-type", b"application/json")]
        )


class Stream(AsyncHttpConsumer):
    """Five parts, then the end."""

    async def handle(self, body):
        await self.send_headers(200, [(b"content-type", b"text/plain")])
        for part in range(5):
            await self.send_body(b"part %d\n" % part, more_body=True)
            await asyncio.sleep(0.01)
        await self.send_body(b"end\n")


class Big(AsyncHttpConsumer):
    """``size`` bytes at once (larger than any flow-control window)."""

    async def handle(self, body):
        size = int(self.message["query_string"].decode().partition("=")[2] or 1_000_000)
        await self.send_response(200, bytes(range(256)) * (size // 256))


class Slow(AsyncHttpConsumer):
    """Answers after a second (for draining)."""

    async def handle(self, body):
        logging.getLogger("h2_project").warning("slow started")
        await asyncio.sleep(1.0)
        await self.send_response(200, b"slow done")


class BadHeader(AsyncHttpConsumer):
    """A header value with CR LF in it."""

    async def handle(self, body):
        await self.send_response(200, b"x", headers=[(b"x-bad", b"a\r\nx-injected: 1")])


class Echo(AsyncWebsocketConsumer):
    """Echoes; says its http_version on 'version'."""

    async def receive(self, text=None, bytes=None, **kwargs):
        await self.send(text=text, bytes=bytes)


class Refuse(AsyncWebsocketConsumer):
    """Refuses every connection."""

    async def connect(self, message, **kwargs):
        await self.close()
