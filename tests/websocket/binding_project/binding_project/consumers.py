"""One socket per topic: the notes stream (the binding) and an echo stream."""

from notes.bindings import NoteBinding

from channels_ws import JsonWebsocketConsumer, WebsocketDemultiplexer


class Echo(JsonWebsocketConsumer):
    """Answers each payload on its stream: a client's round trip through the connection."""

    def receive(self, content, multiplexer, **kwargs):
        multiplexer.send({"echo": content})


class Topic(WebsocketDemultiplexer):
    """In ``notes-<topic>``, as the user of the session cookie."""

    http_user = True
    consumers = {"notes": NoteBinding.consumer, "echo": Echo}

    def connection_groups(self, topic, **kwargs):
        return [f"notes-{topic}"]
