"""A child process for the IPC layer's multi-process tests: ``python ipc_child.py ROLE ...``.

Every role opens an :class:`~channels_ipc.IPCChannelLayer` on the directory given first, prints
``ready`` once it is set up, and prints its results as one JSON line per event, so the test
reading its output can check what was delivered where. Roles:

``send PATH CHANNEL SENDER COUNT [OPTION=VALUE ...]``
    sends ``{"sender": SENDER, "n": 0..COUNT-1}``, retrying on ChannelFull, then ``done``;
    the options (``capacity=5``, ``expiry=0.2``) configure its layer.
``receive PATH CHANNEL``
    receives until a ``{"stop": true}`` message, printing ``[sender, n]`` for each message.
``members PATH GROUP CHANNELS COUNT``
    adds CHANNELS ``new_channel()`` channels to GROUP, prints ``{"names": [...]}``, then
    receives COUNT messages on each, printing ``[channel, n]``.
``serve PATH CHANNEL``
    a worker: receives from CHANNEL and prints ``[sender, n]`` until SIGTERM, which closes the
    layer gracefully.
``hammer PATH SENDER``
    sends to ``hammer.out`` (``{"sender": SENDER, "n": ...}``), group-sends to ``hammer.group``
    (which keeps its last 20 messages), adds its reply channel there as a present member and
    discards it, and receives from ``hammer.in`` as fast as it can, printing
    ``["in", sender, n]`` for what it receives; the test kills it with SIGKILL at random.
``hold PATH``
    takes the store's write lock, prints ``holding`` and sleeps holding it (to be killed).
``discard PATH GROUP CHANNEL``
    discards CHANNEL from GROUP and prints ``done``.
``present PATH GROUP COUNT``
    adds COUNT ``new_channel()`` channels to GROUP, present with ``{"n": 0..COUNT-1}``,
    prints ``{"names": [...]}`` and ``ready``, and sleeps (to be killed).
``group_send PATH GROUP COUNT [OPTION=VALUE ...]``
    sends ``{"n": 0..COUNT-1}`` to GROUP, printing each position as ``[epoch, offset]``, then
    ``done``; ``history={"chat.*": {"size": 10}}`` makes the group keep history.
``flush PATH``
    flushes the store and prints ``done``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

from channels_core.exceptions import ChannelFull, LayerClosed
from channels_ipc import IPCChannelLayer


def emit(value: object) -> None:
    """One line of output for the test."""
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def send_with_retry(layer: IPCChannelLayer, channel: str, message: dict) -> None:
    """Send *message*, waiting while the channel is full."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await layer.send(channel, message)
            return
        except ChannelFull:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.001)


def options(pairs: tuple[str, ...]) -> dict[str, object]:
    """Layer options from ``key=value`` arguments."""
    return {key: json.loads(value) for key, _, value in (pair.partition("=") for pair in pairs)}


async def send(path: str, channel: str, sender: str, count: str, *config: str) -> None:
    layer = IPCChannelLayer(path=path, **options(config))
    emit("ready")
    for n in range(int(count)):
        await send_with_retry(layer, channel, {"sender": int(sender), "n": n})
    emit("done")
    await layer.close()


async def receive(path: str, channel: str) -> None:
    layer = IPCChannelLayer(path=path)
    emit("ready")
    while True:
        message = await layer.receive(channel)
        if message.get("stop"):
            break
        emit([message["sender"], message["n"]])
    emit("done")
    await layer.close()


async def members(path: str, group: str, channels: str, count: str) -> None:
    layer = IPCChannelLayer(path=path)
    names = [await layer.new_channel() for _ in range(int(channels))]
    for name in names:
        await layer.group_add(group, name)
    emit({"names": names})
    emit("ready")

    async def take(name: str) -> None:
        for _ in range(int(count)):
            emit([name, (await layer.receive(name))["n"]])

    await asyncio.gather(*(take(name) for name in names))
    emit("done")
    await layer.close()


async def serve(path: str, channel: str) -> None:
    layer = IPCChannelLayer(path=path)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(layer.close()))
    emit("ready")
    try:
        while True:
            message = await layer.receive(channel)
            emit([message["sender"], message["n"]])
            # A consumer's work: the layer is closed between messages as often as during them.
            await asyncio.sleep(0)
    except LayerClosed:
        emit("closed")


async def hammer(path: str, sender: str) -> None:
    layer = IPCChannelLayer(path=path, capacity=50, history={"hammer.group": {"size": 20}})
    reply = await layer.new_channel()
    emit("ready")

    async def produce() -> None:
        n = 0
        while True:
            await send_with_retry(layer, "hammer.out", {"sender": int(sender), "n": n})
            await layer.group_add("hammer.group", reply, presence={"sender": int(sender)})
            await layer.group_send("hammer.group", {"sender": int(sender), "n": n})
            await layer.group_discard("hammer.group", reply)
            n += 1
            # None of these calls suspends unless hammer.out is full: without this, while
            # the test drains hammer.out fast enough, the loop would never run the receiving
            # tasks below, and the child would be killed having received nothing.
            await asyncio.sleep(0)

    async def consume() -> None:
        while True:
            message = await layer.receive("hammer.in")
            emit(["in", message["sender"], message["n"]])

    async def drain_replies() -> None:
        while True:
            await layer.receive(reply)

    await asyncio.gather(produce(), consume(), drain_replies())


async def hold(path: str) -> None:
    layer = IPCChannelLayer(path=path)
    transaction = layer._store.env.begin(write=True)
    transaction.put(b"held", b"by a process about to be killed")
    emit("holding")
    await asyncio.sleep(60)


async def discard(path: str, group: str, channel: str) -> None:
    layer = IPCChannelLayer(path=path)
    await layer.group_discard(group, channel)
    emit("done")
    await layer.close()


async def present(path: str, group: str, count: str) -> None:
    layer = IPCChannelLayer(path=path)
    names = [await layer.new_channel() for _ in range(int(count))]
    for n, name in enumerate(names):
        await layer.group_add(group, name, presence={"n": n})
    emit({"names": names})
    emit("ready")
    await asyncio.sleep(60)


async def group_send(path: str, group: str, count: str, *config: str) -> None:
    layer = IPCChannelLayer(path=path, **options(config))
    emit("ready")
    for n in range(int(count)):
        position = await layer.group_send(group, {"n": n})
        emit(None if position is None else list(position))
    emit("done")
    await layer.close()


async def flush(path: str) -> None:
    layer = IPCChannelLayer(path=path)
    await layer.flush()
    emit("done")
    await layer.close()


ROLES = {
    "send": send,
    "receive": receive,
    "members": members,
    "serve": serve,
    "hammer": hammer,
    "hold": hold,
    "discard": discard,
    "present": present,
    "group_send": group_send,
    "flush": flush,
}

if __name__ == "__main__":
    asyncio.run(ROLES[sys.argv[1]](*sys.argv[2:]))
