"""The broadcast consumer, written for Django Channels 4.3."""

from channels.generic.websocket import AsyncWebsocketConsumer


class Broadcast(AsyncWebsocketConsumer):
    """Accepts and joins ``bench``; each ``broadcast.message`` event goes to the socket."""

    groups = ["bench"]

    async def broadcast_message(self, event):
        await self.send(text_data=event["text"])
