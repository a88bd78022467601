"""The Redis layer when Redis goes away: restarts, a host down at start-up, a wrong password.

Real ``redis-server`` processes are killed with SIGKILL and started again on the same port.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import pytest

from channels_core.exceptions import LayerUnavailable
from channels_core.testing.conformance import fresh
from channels_core.testing.redis import RedisServer
from channels_redis import RedisChannelLayer

BOUND = 15.0


async def send_when_back(layer: RedisChannelLayer, channel: str, message: dict) -> None:
    """Send, retrying while the layer reports the server unavailable (bounded)."""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                await layer.send(channel, message)
                return
            except LayerUnavailable:
                await asyncio.sleep(0.05)


def messages(caplog, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


async def test_a_restarted_redis_is_reconnected_and_waiting_receives_go_on(caplog):
    caplog.set_level(logging.WARNING, logger="channels_redis")
    with RedisServer() as server:
        layer = RedisChannelLayer(hosts=[server.url])
        try:
            channel, reply = fresh("survivor"), await layer.new_channel()
            waiting = asyncio.ensure_future(layer.receive(channel))
            waiting_reply = asyncio.ensure_future(layer.receive_prefix(layer.process_prefix()))
            await layer.send(fresh("warmup"), {"n": 0})
            await asyncio.sleep(0.1)
            server.kill()
            # Sends fail with a sentence; only the first one finds out, the others fail at
            # once while the reconnect loop runs; the outage is logged once.
            for _ in range(5):
                with pytest.raises(LayerUnavailable, match=rf"{server.port}.*unreachable"):
                    await asyncio.wait_for(layer.send(channel, {"n": 1}), BOUND)
                with pytest.raises(LayerUnavailable, match="unreachable"):
                    await asyncio.wait_for(layer.group_send(fresh("group"), {"n": 1}), BOUND)
            assert layer.shards[0].down_since is not None
            await asyncio.sleep(0.3)
            assert not waiting.done()
            assert not waiting_reply.done()
            assert len(messages(caplog, "is unreachable")) == 1
            server.start()
            await send_when_back(layer, channel, {"n": "after"})
            await send_when_back(layer, reply, {"n": "reply"})
            assert await asyncio.wait_for(waiting, BOUND) == {"n": "after"}
            assert await asyncio.wait_for(waiting_reply, BOUND) == (reply, {"n": "reply"})
            back = messages(caplog, "is back after")
            assert len(back) == 1
            assert "lost if it restarted without persistence" in back[0]
            assert len(messages(caplog, "is unreachable")) == 1
        finally:
            await layer.close()


async def test_a_host_down_at_start_up_fails_fast_and_recovers_while_others_work():
    with RedisServer() as up:
        down = RedisServer()  # its port is chosen, the server not started yet
        try:
            layer = RedisChannelLayer(hosts=[up.url, down.url])
            on_up = next(name for name in (fresh(f"c{n}") for n in range(100))
                         if layer._route(name)[0].name == up.url)  # fmt: skip
            on_down = next(name for name in (fresh(f"c{n}") for n in range(100))
                           if layer._route(name)[0].name == down.url)  # fmt: skip
            with pytest.raises(LayerUnavailable, match=str(down.port)):
                await asyncio.wait_for(layer.send(on_down, {"n": 1}), BOUND)
            await layer.send(on_up, {"n": 1})
            assert await asyncio.wait_for(layer.receive(on_up), BOUND) == {"n": 1}
            waiting = asyncio.ensure_future(layer.receive(on_down))
            down.start()
            await send_when_back(layer, on_down, {"n": 2})
            assert await asyncio.wait_for(waiting, BOUND) == {"n": 2}
        finally:
            await layer.close()
            down.close()


@pytest.mark.parametrize("password", ["wrong", None], ids=["wrong-password", "no-password"])
async def test_authentication_failure_is_a_sentence_naming_the_host(password):
    with RedisServer(password="right") as server:
        auth = f":{password}@" if password else ""
        host = f"redis://{auth}127.0.0.1:{server.port}/0"
        layer = RedisChannelLayer(hosts=[host])
        try:
            for call in (
                lambda: layer.send(fresh("denied"), {"n": 1}),
                lambda: layer.receive(fresh("denied")),
            ):
                with pytest.raises(LayerUnavailable, match="authentication failed") as raised:
                    await asyncio.wait_for(call(), BOUND)
                assert f"127.0.0.1:{server.port}" in str(raised.value)
                assert "password" in str(raised.value)
                assert password is None or password not in str(raised.value)
        finally:
            await layer.close()


class CuttingProxy:
    """A TCP relay to a real Redis server that cuts a connection at a chosen moment.

    ``cut_reply_with = marker``: the next reply chunk holding *marker* is dropped and the
    connection reset (Redis ran the command, its reply never arrives, as when Redis is
    killed between the two). ``cut_command_with = marker``: the next command chunk holding
    *marker* is dropped and the connection reset (the command never runs).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.cut_reply_with: bytes | None = None
        self.cut_command_with: bytes | None = None
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def _relay(self, client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writers += [client_writer, server_writer]

        def cut() -> None:
            self.cuts += 1
            for writer in (client_writer, server_writer):
                writer.transport.abort()

        async def pump(reader, writer, replies: bool) -> None:
            with contextlib.suppress(OSError):
                while chunk := await reader.read(65536):
                    marker = self.cut_reply_with if replies else self.cut_command_with
                    if marker and marker in chunk:
                        if replies:
                            self.cut_reply_with = None
                        else:
                            self.cut_command_with = None
                        return cut()
                    writer.write(chunk)
                    await writer.drain()
            writer.transport.abort()

        await asyncio.gather(
            pump(client_reader, server_writer, False), pump(server_reader, client_writer, True)
        )

    async def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._server.close()


@pytest.mark.parametrize("kind", ["channel", "process"])
async def test_a_pop_whose_reply_is_lost_with_its_connection_is_delivered_once(kind):
    """Redis popped the message, the connection died before the reply arrived: the message
    is in this process's in-flight list, and the next connection delivers it from there."""
    with RedisServer() as server:
        proxy = CuttingProxy(server.port)
        layer = RedisChannelLayer(hosts=[await proxy.start()])
        try:
            if kind == "channel":
                channel = fresh("inflight")
                receive = functools.partial(layer.receive, channel)
            else:
                channel = await layer.new_channel()
                receive = functools.partial(layer.receive_prefix, layer.process_prefix())

            async def received() -> dict:
                got = await asyncio.wait_for(receive(), BOUND)
                return got if kind == "channel" else got[1]

            await layer.send(channel, {"n": 0})
            assert await received() == {"n": 0}
            # The reply holding message 1 is lost: it comes from the in-flight list.
            waiting = asyncio.ensure_future(received())
            await asyncio.sleep(0.1)
            proxy.cut_reply_with = b"lost-with-its-reply"
            await send_when_back(layer, channel, {"n": 1, "text": "lost-with-its-reply"})
            assert await waiting == {"n": 1, "text": "lost-with-its-reply"}
            assert proxy.cuts == 1
            # A pop that never ran (its command was cut): what the in-flight list still holds
            # came with the last reply, and is not delivered again.
            proxy.cut_command_with = b"BLMOVE"
            waiting = asyncio.ensure_future(received())
            await asyncio.sleep(0.1)
            await send_when_back(layer, channel, {"n": 2})
            await send_when_back(layer, channel, {"n": 3})
            assert await waiting == {"n": 2}
            assert await received() == {"n": 3}
            assert proxy.cuts == 2
            assert layer.shards[0].down_since is None
        finally:
            await layer.close()
            await proxy.close()
