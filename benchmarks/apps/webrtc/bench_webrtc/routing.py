"""HTTP signalling at /webrtc/offer and an async echo of every data-channel message."""

from channels_core.routing import route
from channels_webrtc import offer_consumer


async def echo(message):
    """Send the text or bytes back on the same data channel."""
    if "text" in message:
        await message.reply_channel.send({"text": message["text"]})
    else:
        await message.reply_channel.send({"bytes": message["bytes"]})


channel_routing = [
    route("http.request", offer_consumer, path=r"^/webrtc/offer$"),
    route("webrtc.receive", echo),
]
