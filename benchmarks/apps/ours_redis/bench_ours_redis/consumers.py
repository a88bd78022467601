"""The broadcast consumer: every connection joins the group ``bench`` and stays."""

from channels_ws import AsyncWebsocketConsumer


class Broadcast(AsyncWebsocketConsumer):
    """Accepts and joins ``bench``; group sends (``{"text": ...}``) go straight to the socket."""

    groups = ["bench"]
