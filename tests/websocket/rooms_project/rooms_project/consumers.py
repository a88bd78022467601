"""Consumers written for Channels 1, ported by changing their imports.

- ``Room``: a JSON chat room; the user comes from the session cookie on connect
  (``http_user``) and is kept in the channel session; ``private`` refuses anonymous users.
- ``lobby_*``: read the HTTP session on every message (``channel_and_http_session``), not
  only on connect, which is the one message that carries the cookie.
- ``whoami``: an HTTP consumer with ``http_session_user``.
"""

import json

from channels_core import channel_and_http_session, http_session_user
from channels_ws import JsonWebsocketConsumer


class Room(JsonWebsocketConsumer):
    http_user = True

    def connection_groups(self, room, **kwargs):
        return [f"room-{room}"]

    def connect(self, message, room, **kwargs):
        if room == "private" and not message.user.is_authenticated:
            self.close()
        else:
            self.accept()

    def receive(self, content, room, **kwargs):
        self.group_send(
            f"room-{room}",
            {"user": self.message.user.get_username(), "room": room, "text": content["text"]},
        )


@channel_and_http_session
def lobby_connect(message):
    message.reply_channel.send({"accept": True})


@channel_and_http_session
def lobby_receive(message):
    session = message.http_session
    rooms = session.get("rooms", []) if session is not None else []
    said = json.loads(message["text"])
    message.reply_channel.send({"text": json.dumps({"rooms": rooms, "said": said})})


@http_session_user
def whoami(message):
    answer = {"user": message.user.get_username(), "method": message["method"]}
    message.reply_channel.send(
        {
            "status": 200,
            "headers": [[b"content-type", b"application/json"]],
            "content": json.dumps(answer).encode(),
        }
    )
