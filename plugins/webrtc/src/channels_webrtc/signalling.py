"""Signalling: SDP offers in, SDP answers out, over HTTP or a WebSocket.

A client sends its offer as JSON, ``{"type": "offer", "sdp": "v=0..."}`` (what
``RTCPeerConnection.localDescription`` holds once ICE gathering is complete), either as the
body of an HTTP POST routed to :func:`offer_consumer` or as a text message on a WebSocket
routed to :class:`SignallingConsumer`. The consumer forwards it on the channel
``webrtc.offer`` with the client's reply channel; the ``channels serve`` process hosting the
``webrtc`` protocol takes it from there, sets up the peer connection and answers on that reply
channel: ``{"type": "answer", "sdp": "...", "peer": "<id>"}``, or
``{"type": "error", "error": "<what was wrong and the fix>"}`` (HTTP 400 for a bad offer, 503
when the server holds ``max_peers`` peers already).

The consumers run wherever the routing runs (the server in-process, or ``channels worker``
processes), so signalling works in both modes. :func:`parse_offer` and :func:`reply_for` are
plain functions of the message, shared by every signalling path.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels_core.channel import Channel
from channels_core.consumers import AsyncConsumer
from channels_core.message import Message

logger = logging.getLogger(__name__)

OFFER_CHANNEL = "webrtc.offer"
HTTP = "http"
WEBSOCKET = "websocket"
JSON_HEADERS = [[b"content-type", b"application/json"]]
OFFER_SHAPE = '{"type": "offer", "sdp": "<the SDP>"}'


class OfferError(Exception):
    """An offer the server cannot answer; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_offer(raw: str | bytes) -> tuple[str, str]:
    """The ``(sdp, type)`` of an offer sent as JSON; :class:`OfferError` when it is not one."""
    try:
        offer = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        shown = raw[:60] if isinstance(raw, str) else bytes(raw[:60])
        raise OfferError(
            f"The offer {shown!r} is not JSON ({error}); send {OFFER_SHAPE}, the "
            "RTCPeerConnection's localDescription after ICE gathering."
        ) from None
    if not isinstance(offer, dict):
        raise OfferError(f"The offer is a JSON {type(offer).__name__}; send {OFFER_SHAPE}.")
    kind = offer.get("type")
    sdp = offer.get("sdp")
    if kind != "offer":
        raise OfferError(f"The offer has type {kind!r}; set 'type' to 'offer': {OFFER_SHAPE}.")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        shown = sdp[:40] if isinstance(sdp, str) else sdp
        raise OfferError(
            f"The offer's sdp {shown!r} is not an SDP session description (one starts with "
            f"'v=0'); send the offer's SDP text: {OFFER_SHAPE}."
        )
    if "\nm=application " not in sdp.replace("\r\n", "\n"):
        raise OfferError(
            "The offer has no data channel section (no 'm=application' line); create a data "
            "channel with createDataChannel() before createOffer()."
        )
    return sdp, kind


def reply_for(signalling: str, answer: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """The message that carries *answer* (or an error) back on a client's reply channel."""
    body = json.dumps(answer)
    if signalling == HTTP:
        return {"status": status, "headers": JSON_HEADERS, "content": body.encode()}
    return {"text": body}


def error_reply(signalling: str, message: str, status: int = 400) -> dict[str, Any]:
    """The reply for a refused offer: ``{"type": "error", "error": message}``."""
    return reply_for(signalling, {"type": "error", "error": message}, status)


async def forward_offer(reply_channel: str, signalling: str, offer: str | bytes) -> None:
    """Put *offer* on ``webrtc.offer`` for the server, to be answered on *reply_channel*."""
    await Channel(OFFER_CHANNEL).asend(
        {"reply_channel": reply_channel, "signalling": signalling, "offer": offer}
    )


async def offer_consumer(message: Message, **kwargs: Any) -> None:
    """The HTTP signalling consumer: route ``http.request`` on a path to it.

    ``route("http.request", offer_consumer, path=r"^/webrtc/offer$")``. A POST's body is the
    offer; any other method gets 405.
    """
    reply_channel = message["reply_channel"]
    if message["method"] != "POST":
        await Channel(reply_channel).asend(
            {
                **error_reply(
                    HTTP, f"POST the offer as JSON, {OFFER_SHAPE}; not {message['method']}.", 405
                ),
                "headers": [*JSON_HEADERS, [b"allow", b"POST"]],
            }
        )
        return
    await forward_offer(reply_channel, HTTP, message["body"])


class SignallingConsumer(AsyncConsumer):
    """The WebSocket signalling consumer: ``route_class(SignallingConsumer, path=r"^/webrtc/ws$")``.

    Accepts the WebSocket; each text message is an offer, answered on the same WebSocket. A
    client may make several offers (several peers) over one WebSocket; the peers outlive it.
    """

    method_mapping = {
        "websocket.connect": "connect",
        "websocket.receive": "receive",
        "websocket.disconnect": "disconnect",
    }

    async def connect(self, message: Message, **kwargs: Any) -> None:
        """Accept the WebSocket."""
        await message.reply_channel.asend({"accept": True})

    async def receive(self, message: Message, **kwargs: Any) -> None:
        """Forward a text offer; answer a binary message with an error."""
        if message.get("text") is None:
            logger.warning("Refused a binary WebSocket signalling message on %s.", message["path"])
            await message.reply_channel.asend(
                error_reply(WEBSOCKET, f"Send the offer as a text message, {OFFER_SHAPE}.")
            )
            return
        await forward_offer(message["reply_channel"], WEBSOCKET, message["text"])

    async def disconnect(self, message: Message, **kwargs: Any) -> None:
        """Nothing to do: the peers set up through this WebSocket live on without it."""
