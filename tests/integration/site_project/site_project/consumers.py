"""Consumers of the site project."""

from django.conf import settings

from channels_core import Group
from channels_http.consumers import AsyncHttpConsumer
from channels_ws import JsonWebsocketConsumer, WebsocketConsumer


class Hello(AsyncHttpConsumer):
    """Answers with the query string."""

    async def handle(self, body):
        query = self.message["query_string"].decode()
        await self.send_response(
            200, f"hello {query}|{body.decode()}".encode(), [(b"content-type", b"text/plain")]
        )


def crash(message):
    """A sync HTTP consumer that raises."""
    raise ValueError("crashed on purpose")


class Echo(WebsocketConsumer):
    """Echoes text and bytes; ``close`` closes with 4000."""

    def receive(self, text=None, bytes=None, **kwargs):
        if text == "close":
            self.close(4000)
        else:
            self.send(text=text, bytes=bytes)


class Room(WebsocketConsumer):
    """Refuses the room ``private``; says what a member says to every member."""

    def connect(self, message, room, **kwargs):
        if room == "private":
            self.close()
            return
        Group(f"room-{room}").add(message.reply_channel)
        self.accept()

    def receive(self, text=None, bytes=None, room=None, **kwargs):
        Group(f"room-{room}").send({"text": f"{room}: {text}"})


class Json(JsonWebsocketConsumer):
    """Echoes JSON, wrapped."""

    def receive(self, content, **kwargs):
        self.send({"echo": content})


async def silent(message):
    """An HTTP consumer that never answers."""


async def database_name(message):
    """The name of the default database, as this process sees it."""
    name = str(settings.DATABASES["default"]["NAME"]).encode()
    await message.reply_channel.send({"status": 200, "content": name})
