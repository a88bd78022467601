"""The WebSocket side of a room: what one member says, every member of the room sees."""

from __future__ import annotations

import logging
from typing import Any

from channels_ws import JsonWebsocketConsumer

from .models import MAX_MESSAGE_LENGTH, Message, Room, room_group

logger = logging.getLogger(__name__)


class ChatConsumer(JsonWebsocketConsumer):
    """One connection to ``/ws/rooms/<room>/``, for a signed-in user.

    The browser sends ``{"text": "..."}``; every connection of the room gets
    ``{"message": {"author", "text", "sent_at"}}`` (with the room group's ``group`` and
    ``position``: the room keeps its history), and only the sender gets ``{"error": "..."}``
    for a message it cannot take. Each connection is present in the room with its user's
    id and name, and a page that reconnects gets what it missed (``channels.js`` does both).
    Sync, so it runs in the thread pool and uses the ORM directly.
    """

    # The user of the Django session cookie, kept in the channel session for every message.
    http_user = True
    # Who is in the room ("online now"), and what a page missed while it was away.
    presence = True
    recover = True

    def connection_groups(self, room: str, **kwargs: Any) -> list[str]:
        """The room's group, for signed-in users only: a refused connection joins nothing."""
        if self.message.user.is_anonymous:
            return []
        return [room_group(room)]

    def connect(self, message, room: str, **kwargs: Any) -> None:
        """Accept signed-in users; refuse (403) everyone else."""
        if message.user.is_anonymous:
            self.close()
        else:
            self.accept()

    def receive(self, content: Any, room: str, **kwargs: Any) -> None:
        """Store the message and send it to the whole room."""
        text = content.get("text") if isinstance(content, dict) else None
        if not isinstance(text, str) or not text.strip():
            self.send({"error": 'Send {"text": "..."} with some text in it.'})
            return
        text = text.strip()
        if len(text) > MAX_MESSAGE_LENGTH:
            self.send(
                {
                    "error": f"That message has {len(text)} characters; the limit is "
                    f"{MAX_MESSAGE_LENGTH}. Split it in two."
                }
            )
            return
        stored = Message.objects.create(
            room=Room.objects.get_or_create(name=room)[0], author=self.message.user, text=text
        )
        logger.info("%s said %d characters in %s", self.message.user, len(text), room)
        self.group_send(room_group(room), {"message": stored.as_json()})
