"""ASGI entry points: ``channels serve http_project.asgi:application``."""

import json


async def application(scope, receive, send):
    """A bare ASGI 3 application."""
    assert scope["type"] == "http"
    request = await receive()
    body = b"asgi %s %s %s" % (scope["method"].encode(), scope["path"].encode(), request["body"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"asgi")]})
    await send({"type": "http.response.body", "body": body})


async def client_application(scope, receive, send):
    """An ASGI 3 application answering the request's client and scheme, as JSON."""
    await receive()
    body = json.dumps({"client": scope["client"], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
