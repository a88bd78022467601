"""The peers a ``channels serve`` process hosts, and their data channels as Channels events.

:class:`PeerHub` is the ``webrtc`` protocol's service: it takes offers from the channel
``webrtc.offer``, answers each with a new :class:`Peer` (an aiortc ``RTCPeerConnection``), and
closes every peer when the server drains. Each data channel a client opens becomes a
:class:`DataChannelLink`: a reply channel ``webrtc.send.XXXX!YYYY`` bound for its life, and its
events ``webrtc.connect``, ``webrtc.receive`` (``text`` or ``bytes``) and
``webrtc.disconnect`` emitted one after the other, in order, with ``reply_channel``, ``peer``
and ``label``. A consumer answers on the reply channel with ``{"text": ...}``,
``{"bytes": ...}`` or ``{"close": True}``.

What a data channel has not sent yet (aiortc's ``bufferedAmount``: a client that does not
read, or reads slower than its consumer sends) is bounded by ``CHANNELS["WRITE_BUFFER"]``
through the host's write flow (:mod:`channels_core.flow`): past the high-water mark the
consumer's sends wait and messages through the layer are dropped, and a data channel that
stays there for ``timeout`` seconds, or holds more than ``limit`` bytes, is closed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import deque
from typing import TYPE_CHECKING, Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from channels_core.channel import Channel
from channels_core.exceptions import ChannelFull, EventRefused, LayerClosed

from .ice import configuration, gathering_on
from .signalling import OFFER_CHANNEL, OfferError, error_reply, parse_offer, reply_for

if TYPE_CHECKING:
    from aiortc import RTCDataChannel

    from channels_core.server import ProtocolServer

logger = logging.getLogger(__name__)

PROTOCOL = "webrtc"
CONNECT = "webrtc.connect"
RECEIVE = "webrtc.receive"
DISCONNECT = "webrtc.disconnect"
REPLY_PREFIX = "webrtc.send"
# Past this many events waiting for one data channel's consumer, the client is sending faster
# than the consumer keeps up: the data channel is closed rather than the queue grown.
MAX_PENDING_EVENTS = 1000
_MAX_MESSAGE_SIZE_LINE = re.compile(r"^a=max-message-size:\d+\r?$", re.MULTILINE)


def _droppable(content: dict) -> bool:
    """A message through the layer that may be dropped while its data channel's client does
    not read: data, not a close."""
    return not content.get("close")


class DataChannelLink:
    """One data channel bound to a reply channel; see the module docstring."""

    def __init__(self, peer: Peer, channel: RTCDataChannel) -> None:
        self.peer = peer
        self.channel = channel
        self.server = server = peer.hub.server
        self.reply_channel = server.open_reply(REPLY_PREFIX, self.reply)
        self.identity = {
            "reply_channel": self.reply_channel,
            "peer": peer.id,
            "label": channel.label,
        }
        self.finished = False
        self._pending: deque[tuple[str, dict]] = deque()
        self._pump: asyncio.Task | None = None
        # aiortc holds what SCTP cannot send yet itself: past the high-water mark its size is
        # reported to the flow after each send, and 0 once aiortc says it is all handed over
        # (its "bufferedamountlow" event, listened to only then: it comes after every send).
        self.flow = server.write_flow(
            None,
            self.reply_channel,
            self.close,
            droppable=_droppable,
            describe=f"data channel {channel.label!r} of peer {peer.id}",
        )
        self._high_water = self.flow.limits.high_water
        self._watching = False
        channel.bufferedAmountLowThreshold = 0
        channel.on("message", self.received)
        channel.on("close", self.finish)
        self._queue(CONNECT, self.identity)

    def received(self, data: str | bytes) -> None:
        """A message from the client: emit ``webrtc.receive``, unless it breaks a limit."""
        if self.finished:
            return
        size = len(data.encode()) if isinstance(data, str) else len(data)
        if size > self.peer.hub.max_message_size:
            logger.warning(
                "Closing data channel %r of peer %s: it sent a %d-byte message, over "
                "max_message_size (%d).",
                self.channel.label,
                self.peer.id,
                size,
                self.peer.hub.max_message_size,
            )
            self.close()
            return
        if len(self._pending) >= MAX_PENDING_EVENTS:
            logger.warning(
                "Closing data channel %r of peer %s: %d messages wait for its consumer, which "
                "is not keeping up.",
                self.channel.label,
                self.peer.id,
                len(self._pending),
            )
            self.close()
            return
        key = "text" if isinstance(data, str) else "bytes"
        self._queue(RECEIVE, {**self.identity, key: data})

    def reply(self, content: dict) -> None:
        """A message on the reply channel: send its text or bytes, then close if asked.

        A bad message is logged, never raised: it may come through the layer, where raising
        would stop the delivery of other connections' messages.
        """
        text, data, close = content.get("text"), content.get("bytes"), content.get("close")
        if self.finished or self.channel.readyState != "open":
            logger.debug("Dropped a reply for the closed data channel %s.", self.reply_channel)
            return
        if text is not None and data is not None:
            logger.error(
                "A reply to %s has both text and bytes; send one of them per message.",
                self.reply_channel,
            )
            return
        payload = text if text is not None else data
        if payload is not None:
            if not isinstance(payload, (str, bytes)):
                logger.error(
                    "A reply to %s has %s of type %s; send a str as text or bytes as bytes.",
                    self.reply_channel,
                    "text" if text is not None else "bytes",
                    type(payload).__name__,
                )
                return
            try:
                self.channel.send(payload)
            except (ValueError, ConnectionError) as error:
                logger.error("Could not send a reply on %s: %s.", self.reply_channel, error)
                return
            size = self.channel.bufferedAmount
            if size > self._high_water:
                self.flow.held(size)
                if not self._watching:
                    self._watching = True
                    self.channel.on("bufferedamountlow", self._sent_all)
        if close:
            self.close()

    def _sent_all(self) -> None:
        """aiortc handed everything queued to SCTP: sends to this data channel may go on."""
        self._watching = False
        self.channel.remove_listener("bufferedamountlow", self._sent_all)
        self.flow.held(0)

    def close(self) -> None:
        """Close the data channel from the server's side (its peer stays connected)."""
        self.channel.close()
        self.finish()

    def finish(self) -> None:
        """The data channel is gone: unbind the reply channel, emit ``webrtc.disconnect``."""
        if self.finished:
            return
        self.finished = True
        self.flow.detach()
        self.server.close_reply(self.reply_channel)
        self.peer.links.discard(self)
        self._queue(DISCONNECT, self.identity)

    def _queue(self, channel: str, content: dict) -> None:
        """Emit *content* once the events before it on this data channel are handled."""
        self._pending.append((channel, content))
        if self._pump is None:
            self._pump = self.server.loop.create_task(self._emit_pending())
            self.peer.hub.pumps.add(self._pump)

    async def _emit_pending(self) -> None:
        try:
            while self._pending:
                channel, content = self._pending.popleft()
                try:
                    await self.server.emit(channel, content)
                except EventRefused as error:
                    # Worker mode, and the workers are not keeping up: close the data channel,
                    # as when a consumer falls behind in-process, so the client knows.
                    logger.warning(
                        "%s data channel %r of peer %s: the layer refused its %s event %s. "
                        "Run more workers, or raise the layer's capacity.",
                        "Closed" if self.finished else "Closing",
                        self.channel.label,
                        self.peer.id,
                        channel,
                        "because that channel is full"
                        if isinstance(error.reason, ChannelFull)
                        else f"({error})",
                    )
                    self.close()
                except Exception:
                    logger.exception(
                        "Could not emit %s for data channel %r of peer %s.",
                        channel,
                        self.channel.label,
                        self.peer.id,
                    )
        finally:
            self.peer.hub.pumps.discard(self._pump)
            self._pump = None


class Peer:
    """One client's ``RTCPeerConnection`` and its data channels."""

    def __init__(self, hub: PeerHub) -> None:
        self.hub = hub
        self.id = secrets.token_hex(8)
        self.connection = RTCPeerConnection(hub.configuration)
        self.links: set[DataChannelLink] = set()
        self._closing: asyncio.Task | None = None
        self._timer = hub.server.loop.call_later(hub.connect_timeout, self._connect_timed_out)
        self.connection.on("datachannel", self._opened)
        self.connection.on("connectionstatechange", self._state_changed)

    def _opened(self, channel: RTCDataChannel) -> None:
        self.links.add(DataChannelLink(self, channel))

    def _state_changed(self) -> None:
        state = self.connection.connectionState
        if state == "connected":
            self._timer.cancel()
        elif state in ("failed", "closed"):
            self.close()

    def _connect_timed_out(self) -> None:
        logger.info(
            "Closing peer %s: it did not connect within %s s of its answer.",
            self.id,
            self.hub.connect_timeout,
        )
        self.close()

    def close(self) -> asyncio.Task:
        """Close the peer connection and every data channel on it (once); await the result."""
        if self._closing is None:
            self._closing = self.hub.server.loop.create_task(self._close())
        return self._closing

    async def _close(self) -> None:
        self._timer.cancel()
        self.hub.peers.pop(self.id, None)
        for link in list(self.links):
            link.finish()
        try:
            await self.connection.close()
        except Exception:
            logger.exception("Closing the connection of peer %s failed.", self.id)


class PeerHub:
    """The ``webrtc`` protocol's service in a ``channels serve`` process."""

    def __init__(self, server: ProtocolServer) -> None:
        self.server = server
        option = server.options[PROTOCOL]
        self.configuration = configuration(option["ice_servers"])
        self.host_addresses = option["host_addresses"]
        self.max_message_size = option["max_message_size"]
        self.max_peers = option["max_peers"]
        self.connect_timeout = option["connect_timeout"]
        self.peers: dict[str, Peer] = {}
        self.pumps: set[asyncio.Task] = set()
        self._offers: set[asyncio.Task] = set()
        self._receiving: asyncio.Task | None = None

    def describe(self) -> str:
        """What the service listens on, for the start-up log."""
        hosts = (
            ", ".join(self.host_addresses) if self.host_addresses is not None else "every interface"
        )
        return f"{OFFER_CHANNEL} (host candidates on {hosts})"

    async def start(self, server: ProtocolServer) -> None:
        """Start taking offers from ``webrtc.offer``."""
        self._receiving = server.loop.create_task(self._receive_offers())

    async def stop(self, server: ProtocolServer) -> None:
        """Stop taking offers, close every peer, let their disconnect events be handled."""
        if self._receiving is not None:
            self._receiving.cancel()
            await asyncio.gather(self._receiving, return_exceptions=True)
            self._receiving = None
        if self._offers:
            await asyncio.wait(set(self._offers), timeout=server.drain_timeout)
        closing = [peer.close() for peer in list(self.peers.values())]
        if closing:
            logger.info("Closing %d WebRTC peers.", len(closing))
            await asyncio.wait(closing, timeout=server.drain_timeout)
        if self.pumps:
            await asyncio.wait(set(self.pumps), timeout=server.drain_timeout)

    async def _receive_offers(self) -> None:
        while True:
            try:
                content = await self.server.receive(OFFER_CHANNEL)
            except LayerClosed:
                return
            task = self.server.loop.create_task(self.handle_offer(content))
            self._offers.add(task)
            task.add_done_callback(self._offers.discard)

    async def handle_offer(self, content: dict) -> None:
        """Answer one ``webrtc.offer`` message on its reply channel."""
        reply_channel = content.get("reply_channel")
        signalling = content.get("signalling")
        if not isinstance(reply_channel, str) or not reply_channel:
            logger.error(
                "Dropped a %s message without a reply_channel (keys: %s); send it with "
                "channels_webrtc.signalling.forward_offer().",
                OFFER_CHANNEL,
                sorted(content),
            )
            return
        try:
            answer = await self.answer(content.get("offer"))
        except OfferError as error:
            logger.warning("Refused a WebRTC offer (%s): %s", reply_channel, error)
            reply = error_reply(signalling, str(error), error.status)
        else:
            reply = reply_for(signalling, answer)
        try:
            await Channel(reply_channel).asend(reply)
        except Exception:
            logger.exception("Could not send the answer to %s.", reply_channel)

    async def answer(self, offer: Any) -> dict:
        """Set up a peer for *offer* (the JSON text a client sent); return the answer.

        Raises :class:`OfferError` for an offer that is not one, or that aiortc refuses, and
        when ``max_peers`` peers are connected already.
        """
        if not isinstance(offer, (str, bytes)):
            raise OfferError(f"The offer is a {type(offer).__name__}; send it as JSON text.")
        sdp, kind = parse_offer(offer)
        if len(self.peers) >= self.max_peers:
            raise OfferError(
                f"This server holds {len(self.peers)} WebRTC peers, its max_peers; try again "
                "later or raise CHANNELS['OPTIONS']['webrtc']['max_peers'].",
                status=503,
            )
        peer = Peer(self)
        self.peers[peer.id] = peer
        connection = peer.connection
        try:
            await connection.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            with gathering_on(self.host_addresses):
                await connection.setLocalDescription(await connection.createAnswer())
        except Exception as error:
            # aiortc reports a bad SDP with ValueError, KeyError, IndexError and others.
            await peer.close()
            raise OfferError(
                f"The offer's SDP was refused: {type(error).__name__}: {error}. Send the SDP "
                "of an RTCPeerConnection with at least one data channel, unchanged."
            ) from None
        answer_sdp = _MAX_MESSAGE_SIZE_LINE.sub(
            f"a=max-message-size:{self.max_message_size}", connection.localDescription.sdp
        )
        logger.info("Answered a WebRTC offer: peer %s.", peer.id)
        return {"type": "answer", "sdp": answer_sdp, "peer": peer.id}
