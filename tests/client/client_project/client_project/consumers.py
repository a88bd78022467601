"""Consumers of the browser client's tests."""

from urllib.parse import parse_qs

from channels_ws import JsonWebsocketConsumer, WebsocketConsumer, WebsocketDemultiplexer


class Echo(JsonWebsocketConsumer):
    """Sends back each JSON message."""

    def receive(self, content, **kwargs):
        self.send({"echo": content})


class EchoStream(JsonWebsocketConsumer):
    """The ``echo`` stream: each payload back."""

    def receive(self, content, **kwargs):
        self.send(content)


class UpperStream(JsonWebsocketConsumer):
    """The ``upper`` stream: ``{"text": x}`` back in capitals."""

    def receive(self, content, **kwargs):
        self.send({"text": content["text"].upper()})


class Demux(WebsocketDemultiplexer):
    """Two streams on one connection."""

    consumers = {"echo": EchoStream, "upper": UpperStream}


class PresenceRoom(JsonWebsocketConsumer):
    """Present in ``presence-<room>`` with the ``?name=`` of its URL; recovering what the
    group said while away, for the group that keeps history (``presence-kept``)."""

    presence = True
    recover = True

    def connection_groups(self, room, **kwargs):
        return [f"presence-{room}"]

    def presence_info(self, **kwargs):
        return {"name": parse_qs(self.message["query_string"].decode())["name"][0]}


class HistoryRoom(JsonWebsocketConsumer):
    """A room whose group keeps history (``room-<room>``: 100 messages, ``small-<room>``: 3);
    ``{"say": x}`` is sent to the group as ``{"said": x}``, which a reconnecting client
    recovers."""

    recover = True

    def connection_groups(self, kind, room, **kwargs):
        return [f"{kind}-{room}"]

    def receive(self, content, kind, room, **kwargs):
        self.group_send(f"{kind}-{room}", {"said": content["say"]})


class Relay(JsonWebsocketConsumer):
    """Tells each connection the query string it came with, ``{"query": ...}``; then sends
    back the frames a test asks for, as they are: JSON (``{"send": [frame, ...]}``), text
    (``{"text": "..."}``) or bytes (``{"bytes": [0, 1, ...]}``), and closes on ``{"close":
    true}``. The tests script with it the orders of live and replayed messages that a real
    group makes only by chance."""

    def connect(self, message, **kwargs):
        self.accept()
        self.send({"query": message["query_string"].decode()})

    def receive(self, content, **kwargs):
        for frame in content.get("send", []):
            self.send(frame)
        if "text" in content:
            WebsocketConsumer.send(self, text=content["text"])
        if "bytes" in content:
            WebsocketConsumer.send(self, bytes=bytes(content["bytes"]))
        if content.get("close"):
            self.close()
