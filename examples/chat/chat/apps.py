"""The chat app of the demo."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Rooms, their messages, the pages and the WebSocket consumer."""

    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"
