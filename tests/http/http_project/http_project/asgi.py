"""ASGI entry points: ``channels serve http_project.asgi:application``."""


async def application(scope, receive, send):
    """A bare ASGI 3 application."""
    assert scope["type"] == "http"
    request = await receive()
    body = b"asgi %s %s %s" % (scope["method"].encode(), scope["path"].encode(), request["body"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"asgi")]})
    await send({"type": "http.response.body", "body": body})
