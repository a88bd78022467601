"""Rooms and the messages said in them."""

from django.conf import settings
from django.db import models

# A room's name, as it appears in page and WebSocket URLs: the routing and the URLconf share it.
ROOM_PATTERN = r"[a-z0-9-]{1,50}"
MAX_MESSAGE_LENGTH = 1000


def room_group(room: str) -> str:
    """The channel group whose members are the open connections of *room*."""
    return f"chat-room-{room}"


class Room(models.Model):
    """A chat room; made the first time someone enters it."""

    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Message(models.Model):
    """One message said in a room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField(max_length=MAX_MESSAGE_LENGTH)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"{self.author}: {self.text}"

    def as_json(self) -> dict:
        """What the browser gets for this message."""
        return {
            "author": self.author.get_username(),
            "text": self.text,
            "sent_at": self.sent_at.isoformat(),
        }
