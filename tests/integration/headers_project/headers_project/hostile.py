"""What a careless or hostile application may send: a header named and valued by the query
string (``?n=X-Test&v=a%0D%0AX-Injected:%201``), from a consumer, a Django view, an ASGI
application and a WebSocket handshake; and bodies that disagree with their Content-Length."""

from urllib.parse import parse_qs

from django.http import HttpResponse
from django.urls import path

from channels_core import route

# A body that, written after a shorter Content-Length, would read as a second response.
SMUGGLED = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled"


def _header(query_string: bytes) -> list[bytes]:
    """The ``[name, value]`` the query string gives, percent-decoded to bytes."""
    query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    name, value = query.get("n", ["X-Test"])[0], query.get("v", ["fine"])[0]
    return [name.encode("latin-1"), value.encode("latin-1")]


async def header(message):
    """Answers with the header the query string gives."""
    await message.reply_channel.send(
        {"status": 200, "headers": [_header(message["query_string"])], "content": b"ok"}
    )


# name: (Content-Length, the parts of the body, each but the last with more_content)
LENGTHS = {
    "exact": (5, [b"012", b"34"]),
    "long": (5, [b"01234" + SMUGGLED]),
    "short": (10, [b"01234"]),
    "long-later": (5, [b"012", b"34" + SMUGGLED]),
    "short-later": (10, [b"012", b""]),
}


async def length(message, case):
    """Declares a Content-Length and sends a body of another length (or the same: exact)."""
    declared, parts = LENGTHS[case]
    reply = message.reply_channel
    for index, part in enumerate(parts):
        content = {"content": part, "more_content": index < len(parts) - 1}
        if index == 0:
            content.update(status=200, headers=[[b"Content-Length", b"%d" % declared]])
        await reply.send(content)


async def ws_connect(message):
    """Accepts the WebSocket with the header the query string gives."""
    await message.reply_channel.send(
        {"accept": True, "headers": [_header(message["query_string"])]}
    )


routes = [
    route("http.request", header, path=r"^/header/$"),
    route("http.request", length, path=r"^/length/(?P<case>[a-z-]+)/$"),
    route("websocket.connect", ws_connect),
]


def django_header(request):
    """A Django view that slips the header past Django's own check (which refuses CR and LF
    in values) by writing it into the response's header store directly."""
    name, value = _header(request.META["QUERY_STRING"].encode("latin-1"))
    response = HttpResponse(b"ok", content_type="text/plain")
    response.headers._store[name.decode("latin-1").lower()] = (
        name.decode("latin-1"),
        value.decode("latin-1"),
    )
    return response


urlpatterns = [path("django/header/", django_header)]


async def application(scope, receive, send):
    """An ASGI 3 application answering, and accepting WebSockets, with the query's header."""
    header = _header(scope["query_string"])
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept", "headers": [header]})
        await receive()
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [header]})
    await send({"type": "http.response.body", "body": b"ok"})
