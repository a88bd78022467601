"""Consumers of the ticker project."""

import json

from django.conf import settings

from channels_core import Group


def record(message):
    """Append the tick to ``settings.TICKS_FILE`` and pass it on to the ``ticks`` group.

    A sync consumer: it runs in a thread, so the file write does not hold up the server.
    Whoever joined the group (a WebSocket page, say) sees every tick.
    """
    tick = {"count": message["count"], "at": message["at"], "name": message["name"]}
    with open(settings.TICKS_FILE, "a", encoding="utf-8") as ticks:
        ticks.write(json.dumps(tick) + "\n")
    Group("ticks").send(tick)
