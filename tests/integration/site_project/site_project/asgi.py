"""ASGI entry points.

``application``: a tiny hand-written ASGI 3 application (no Channels in it), for
``channels serve site_project.asgi:application``. ``channels_application``: the project's
Channels routing as an ASGI application, for uvicorn.
"""

import django

from channels_http.application import ChannelsApplication

django.setup()

channels_application = ChannelsApplication()


async def application(scope, receive, send):
    """HTTP: ``plain <path>``. WebSocket: accepts with the client's first subprotocol, echoes
    ``app: <text>``, closes with 4001 on ``bye``, raises on ``raise``, refuses ``/refuse/``."""
    if scope["type"] == "http":
        await receive()
        body = f"plain {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    assert scope["type"] == "websocket"
    event = await receive()
    assert event["type"] == "websocket.connect"
    if scope["path"] == "/refuse/":
        await send({"type": "websocket.close"})
        return
    subprotocols = scope["subprotocols"]
    await send(
        {"type": "websocket.accept", "subprotocol": subprotocols[0] if subprotocols else None}
    )
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        if event.get("text") == "raise":
            raise RuntimeError("the ASGI application failed on purpose")
        if event.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4001})
            return
        if event.get("text") is not None:
            await send({"type": "websocket.send", "text": f"app: {event['text']} {scope['path']}"})
        else:
            await send({"type": "websocket.send", "bytes": event["bytes"][::-1]})
