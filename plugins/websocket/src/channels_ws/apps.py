"""The Django app ``channels_ws``: ``INSTALLED_APPS = [..., "channels_ws"]`` lets
staticfiles find the browser client, ``{% static "channels/channels.js" %}``
(docs/client.md). It has no models and its ``ready()`` does nothing: the WebSocket protocol
itself is a plugin, which the plugin manager loads, not Django.
"""

from __future__ import annotations

from django.apps import AppConfig


class ChannelsWsConfig(AppConfig):
    """The ``channels_ws`` Django app: the static files of the browser client."""

    name = "channels_ws"
    verbose_name = "Channels WebSocket"
