"""A hand-written ASGI 3 application that sends more than its WebSocket clients read, for
``channels serve flow_project.asgi:application``."""

import logging

logger = logging.getLogger("flow_project")


async def application(scope, receive, send):
    """WebSocket: ``"COUNT SIZE"`` is answered with COUNT binary messages of SIZE bytes,
    every 50th send logged."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        count, size = map(int, event["text"].split())
        for index in range(count):
            await send({"type": "websocket.send", "bytes": index.to_bytes(4, "big") * (size // 4)})
            if (index + 1) % 50 == 0:
                logger.warning("asgi: sent %d", index + 1)
