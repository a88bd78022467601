"""The consumers the WebSocket tests talk to."""

from django.conf import settings
from django.contrib.auth import get_user_model

from channels_ws import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
    WebsocketDemultiplexer,
)


class Echo(WebsocketConsumer):
    """Echoes text and bytes; ``close <code>`` closes with that code."""

    def receive(self, text=None, bytes=None, **kwargs):
        if text is not None and text.startswith("close "):
            self.close(int(text.split()[1]))
        elif text == "crash":
            raise RuntimeError("the consumer crashed on purpose")
        elif text == "bad reply":
            self.message.reply_channel.send({"text": b"not a str"})
        else:
            self.send(text=text, bytes=bytes)


class Watched(Echo):
    """Tells the ``chat-watchers`` group how and when (order) it was disconnected."""

    def disconnect(self, message, **kwargs):
        self.group_send("chat-watchers", text=f"bye {message['code']} {message['order']}")


class AsyncEcho(AsyncWebsocketConsumer):
    """Echoes on the event loop, with the order of each message."""

    async def receive(self, text=None, bytes=None, **kwargs):
        await self.send(text=f"{self.message['order']}:{text}")


class Flood(AsyncWebsocketConsumer):
    """Answers ``"N"`` with N binary messages of 2,000 bytes, each its index repeated."""

    async def receive(self, text=None, bytes=None, **kwargs):
        for index in range(int(text)):
            await self.send(bytes=index.to_bytes(2, "big") * 1000)


class JsonEcho(JsonWebsocketConsumer):
    """Echoes JSON, wrapped."""

    def receive(self, content, **kwargs):
        self.send({"echo": content})


class AsyncJsonEcho(AsyncJsonWebsocketConsumer):
    """Echoes JSON on the event loop."""

    async def receive(self, content, **kwargs):
        await self.send({"async": content})


class Chat(WebsocketConsumer):
    """One group per room; what a member says reaches every member."""

    def connection_groups(self, room, **kwargs):
        return [f"chat-{room}"]

    def receive(self, text=None, bytes=None, room=None, **kwargs):
        self.group_send(f"chat-{room}", text=text)


class Gatekeeper(WebsocketConsumer):
    """Refuses ``/refuse/``, says nothing for ``/silent/``, crashes on ``/crash-connect/``,
    accepts with the client's last subprotocol on ``/subprotocol/``."""

    def connect(self, message, kind, **kwargs):
        if kind == "refuse":
            self.close()
        elif kind == "crash-connect":
            raise RuntimeError("connect crashed on purpose")
        elif kind == "subprotocol":
            self.accept(subprotocol=message["subprotocols"][-1])


class Whoami(WebsocketConsumer):
    """``http_user``: the logged-in user of the session cookie, on connect and later."""

    http_user = True

    def connect(self, message, **kwargs):
        self.accept()
        self.send(text=f"connect:{message.user.get_username() or 'anonymous'}")

    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=f"receive:{self.message.user.get_username() or 'anonymous'}")


def authenticate_token(token):
    """The test authenticator: ``settings.TOKENS`` maps tokens to user names."""
    username = settings.TOKENS.get(token)
    if username is None:
        return None
    return get_user_model().objects.filter(username=username).first()


class TokenWhoami(WebsocketConsumer):
    """Token authentication on connect; the user stays in the channel session."""

    token_auth = True
    token_authenticator = authenticate_token

    def connect(self, message, **kwargs):
        if message.user.is_anonymous:
            self.close()
        else:
            self.accept()

    def receive(self, text=None, bytes=None, **kwargs):
        self.send(text=f"token:{self.message.user.get_username()}")


class TokenFromSetting(TokenWhoami):
    """The authenticator named by the CHANNELS_WS_TOKEN_AUTHENTICATOR setting."""

    token_authenticator = None


class EchoStream(JsonWebsocketConsumer):
    """A stream of the demultiplexer."""

    def connect(self, message, multiplexer, **kwargs):
        multiplexer.send({"connected": multiplexer.stream})

    def receive(self, content, multiplexer, **kwargs):
        self.send({"echo": content, "stream": multiplexer.stream})


class Demux(WebsocketDemultiplexer):
    """Two streams on one socket."""

    consumers = {"echo": EchoStream, "other": EchoStream}


class PresenceRoom(AsyncJsonWebsocketConsumer):
    """Present in ``presence-<room>`` with the ``?name=`` of its URL; refuses ``?name=no``."""

    presence = True

    def connection_groups(self, room, **kwargs):
        return [f"presence-{room}"]

    def presence_info(self, **kwargs):
        return {"name": self.message["query_string"].decode().partition("=")[2]}

    async def connect(self, message, **kwargs):
        if message["query_string"] == b"name=no":
            await self.close()
        else:
            await self.accept()


class SyncPresenceRoom(JsonWebsocketConsumer):
    """:class:`PresenceRoom` as a sync consumer."""

    presence = True

    def connection_groups(self, room, **kwargs):
        return [f"presence-{room}"]

    def presence_info(self, **kwargs):
        return {"name": self.message["query_string"].decode().partition("=")[2]}


class RecoverRoom(AsyncJsonWebsocketConsumer):
    """A room whose group keeps history (``history-<room>``); ``{"say": x}`` is sent to it."""

    recover = True

    def connection_groups(self, room, **kwargs):
        return [f"history-{room}"]

    async def receive(self, content, **kwargs):
        await self.group_send(f"history-{kwargs['room']}", {"said": content["say"]})
