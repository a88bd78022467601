"""Consumers of the HTTP test project."""

import asyncio
import json

from channels_core import Group
from channels_http.consumers import AsyncHttpConsumer


async def hello(message):
    """A function consumer answering at once."""
    await message.reply_channel.send(
        {"status": 200, "headers": [[b"content-type", b"text/plain"]], "content": b"hello"}
    )


def echo(message):
    """A sync consumer echoing the body and query string."""
    message.reply_channel.send(
        {"status": 201, "content": message["query_string"] + b"|" + message["body"]}
    )


def crash(message):
    """A consumer that raises."""
    raise ValueError("boom")


class Stream(AsyncHttpConsumer):
    """Streams five parts, without a Content-Length (chunked)."""

    async def handle(self, body):
        await self.send_headers(200, [(b"content-type", b"text/plain")])
        for part in range(5):
            await self.send_body(b"part %d\n" % part, more_body=True)
        await self.send_body(b"end\n")


class Endless(AsyncHttpConsumer):
    """Streams until the client goes away."""

    async def handle(self, body):
        await self.send_headers(200)
        for _ in range(2000):
            await self.send_body(b"x" * 1024, more_body=True)
            await asyncio.sleep(0.001)
        await self.send_body(b"")


WAITING = [0]


class Wait(AsyncHttpConsumer):
    """Long-poll: join the group and return; a later group send answers."""

    async def handle(self, body):
        await Group("waiters").add(self.message.reply_channel)
        WAITING[0] += 1


async def waiting(message):
    """How many requests joined the waiters so far."""
    await message.reply_channel.send({"status": 200, "content": b"%d" % WAITING[0]})


async def release(message):
    """Answer every waiting request, then this one."""
    await Group("waiters").send({"status": 200, "content": b"released"})
    await message.reply_channel.send({"status": 200, "content": b"done"})


async def meta(message):
    """The request's client, scheme, root_path and decoded path, as JSON."""
    keys = ("client", "scheme", "root_path", "path")
    content = json.dumps({key: message[key] for key in keys}).encode()
    await message.reply_channel.send({"status": 200, "content": content})
