"""The test's way into the worker: messages arrive over a socket and go on the worker's layer."""

from __future__ import annotations

import asyncio
import json
import os

from channels_core import hookimpl

_tasks: list[asyncio.Task] = []


async def _serve_test(server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(os.environ["WORKER_TEST_PORT"]))
    writer.write(json.dumps({"channels": list(server.channels)}).encode() + b"\n")
    await writer.drain()
    try:
        while line := await reader.readline():
            request = json.loads(line)
            await server.layer.send(request["channel"], request["content"])
            writer.write(b'{"sent": true}\n')
            await writer.drain()
    finally:
        writer.close()


@hookimpl
def channels_startup(server) -> None:
    """Connect to the test once the worker's receive loops run."""
    _tasks.append(server.loop.create_task(_serve_test(server)))


@hookimpl
def channels_shutdown(server) -> None:
    """Leave a ``shutdown`` file, proving the hook ran, and drop the test connection."""
    for task in _tasks:
        task.cancel()
    path = os.path.join(os.environ["WORKER_TEST_DIR"], "shutdown")
    with open(path, "w") as marker:
        marker.write(server.kind)
