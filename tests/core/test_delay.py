"""The delay server (``asgi.delay``) as real processes, on a real ``redis-server`` and on IPC.

Each test writes a settings module into its directory naming a Redis layer (a fresh key prefix
on the session's server) or an IPC layer (a store in the directory), starts ``channels delay``
or ``manage.py rundelay`` processes on it, and talks to them through a layer of its own on the
same store: it sends requests to ``asgi.delay`` and receives what they deliver. Nothing is
timed for speed: a delivered message must not arrive before its delay is up, must arrive (with
a generous timeout), and must arrive once, in due order.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest

from channels_core.delay import DELAY_CHANNEL, DelayServer, parse_delay_request
from channels_core.exceptions import ImproperlyConfigured
from channels_core.names import random_suffix
from channels_core.testing.processes import RunningProcess, run, start_process, write_settings
from channels_core.testing.redis import redis_server
from channels_ipc import IPCChannelLayer
from channels_memory import InMemoryChannelLayer
from channels_redis import RedisChannelLayer

__all__ = ["redis_server"]  # the fixture, imported for the tests here

pytestmark = pytest.mark.slow

CHANNELS = Path(sys.executable).with_name("channels")
SETTINGS = "delay_settings"
START_TIMEOUT = 30.0
# Generous: how long a due message may take to arrive before the test gives up.
ARRIVAL_TIMEOUT = 20.0
MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "delay_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


class DelayProject:
    """Delay server processes on one layer, and this process's layer on the same store.

    :param backend: ``"redis"`` or ``"ipc"``.
    """

    def __init__(self, backend: str, directory: Path, redis_url: str) -> None:
        self.directory = directory
        if backend == "redis":
            config = {"hosts": [redis_url], "prefix": f"delay.{random_suffix(8)}:"}
            self.layer = RedisChannelLayer(**config)
        else:
            config = {"path": str(directory / "ipc")}
            self.layer = IPCChannelLayer(**config)
        write_settings(
            directory, SETTINGS, CHANNEL_LAYERS={"default": {"BACKEND": backend, "CONFIG": config}}
        )
        (directory / "manage.py").write_text(MANAGE)
        self.env = {"DJANGO_SETTINGS_MODULE": SETTINGS, "PYTHONPATH": str(directory)}
        self.processes: list[RunningProcess] = []

    def start(self, *args: str, manage: bool = False) -> RunningProcess:
        """``channels delay ARGS`` (or ``manage.py rundelay ARGS``), logging at debug level,
        once it listens."""
        if manage:
            command = [sys.executable, self.directory / "manage.py", "rundelay", "-v", "2"]
        else:
            command = [CHANNELS, "delay", "-v", "2"]
        process = start_process([*command, *args], env=self.env, cwd=self.directory)
        self.processes.append(process)
        process.wait_for_line("Delay server listening on asgi.delay", timeout=START_TIMEOUT)
        return process

    async def request(self, channel: str, content: dict, delay: int) -> float:
        """Send *content* to *channel* in *delay* ms through ``asgi.delay``; the time sent."""
        sent_at = time.time()
        await self.layer.send(
            DELAY_CHANNEL, {"channel": channel, "content": content, "delay": delay}
        )
        return sent_at

    async def receive(self, channel: str) -> tuple[dict, float]:
        """The next message of *channel* and the time it arrived."""
        message = await asyncio.wait_for(self.layer.receive(channel), ARRIVAL_TIMEOUT)
        return message, time.time()

    async def assert_nothing(self, channel: str, wait: float) -> None:
        """Nothing (more) arrives on *channel* within *wait* seconds."""
        try:
            message = await asyncio.wait_for(self.layer.receive(channel), wait)
        except TimeoutError:
            return
        pytest.fail(f"Expected nothing more on {channel!r}, got {message!r}.")

    async def close(self) -> None:
        for process in self.processes:
            process.__exit__(None, None, None)
        await self.layer.flush()
        await self.layer.close()


@pytest.fixture(params=["redis", "ipc"])
async def project(request, tmp_path):
    """A :class:`DelayProject` on Redis and on IPC; its processes are killed at the end."""
    redis_url = request.getfixturevalue("redis_server") if request.param == "redis" else ""
    running = DelayProject(request.param, tmp_path, redis_url)
    try:
        yield running
    finally:
        await running.close()


async def test_delivers_each_message_when_due_in_due_order(project):
    project.start()
    channel = f"delayed.{random_suffix()}"
    delays = {"third": 1500, "first": 300, "second": 900, "now": 0}
    sent = {name: await project.request(channel, {"name": name}, ms) for name, ms in delays.items()}
    arrived = [await project.receive(channel) for _ in delays]
    assert [message["name"] for message, _ in arrived] == ["now", "first", "second", "third"]
    for message, arrived_at in arrived:
        name = message["name"]
        assert arrived_at >= sent[name] + delays[name] / 1000, f"{name} arrived early"
    await project.assert_nothing(channel, 1.0)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_delays_survive_a_restart_of_the_delay_server(project, stop):
    server = project.start()
    later, sooner = f"later.{random_suffix()}", f"sooner.{random_suffix()}"
    later_sent = await project.request(later, {"n": "later"}, 5000)
    sooner_sent = await project.request(sooner, {"n": "sooner"}, 800)
    for channel in (later, sooner):
        server.wait_for_line(f"Keeping a message for '{channel}'", timeout=START_TIMEOUT)
    status = server.terminate(stop)
    assert status == (0 if stop == signal.SIGTERM else -signal.SIGKILL), server.output
    # Down past the sooner one's due time; back before the later one's, as the other command.
    await asyncio.sleep(max(0.0, sooner_sent + 1.0 - time.time()))
    project.start(manage=True)
    restarted_at = time.time()
    assert restarted_at < later_sent + 5, "the restart took too long to test a pending delay"
    message, arrived_at = await project.receive(sooner)
    assert message == {"n": "sooner"}
    assert arrived_at >= restarted_at
    message, arrived_at = await project.receive(later)
    assert message == {"n": "later"}
    assert arrived_at >= later_sent + 5
    await project.assert_nothing(sooner, 0.5)
    await project.assert_nothing(later, 0.5)


async def test_two_delay_servers_deliver_each_message_once(project):
    servers = [project.start(), project.start()]
    channel, count = f"delayed.{random_suffix()}", 40
    for n in range(count):
        await project.request(channel, {"n": n}, (n % 8) * 150)
    received = [(await project.receive(channel))[0]["n"] for _ in range(count)]
    assert sorted(received) == list(range(count))
    await project.assert_nothing(channel, 1.5)
    for server in servers:
        assert server.returncode is None, server.output


async def test_bad_requests_are_logged_in_one_sentence_and_dropped(project):
    server = project.start("--max-delay", "60", manage=True)
    channel = f"delayed.{random_suffix()}"
    bad = [
        ({"channel": channel, "content": {"n": 1}}, "without 'delay'"),
        ({"channel": channel, "content": {"n": 2}, "delay": -5}, "whose 'delay' is -5"),
        ({"channel": channel, "content": {"n": 3}, "delay": 2.5}, "whose 'delay' is 2.5"),
        ({"channel": channel, "content": {"n": 4}, "delay": 61_000}, "maximum of 60 s"),
        ({"channel": "no spaces", "content": {"n": 5}, "delay": 0}, "'channel' is invalid"),
        ({"channel": channel, "content": [6], "delay": 0}, "'content' is a list"),
    ]
    for message, _ in bad:
        await project.layer.send(DELAY_CHANNEL, message)
    await project.request(channel, {"n": "good"}, 0)
    for _, words in bad:
        line = server.wait_for_line(f"Dropped a message sent to asgi.delay .*{words}").string
        assert line.count(". ") == 0, f"more than one sentence: {line}"
    assert (await project.receive(channel))[0] == {"n": "good"}
    await project.assert_nothing(channel, 0.5)
    assert server.returncode is None


def test_channels_delay_refuses_a_layer_of_one_process(tmp_path):
    write_settings(tmp_path, SETTINGS, CHANNEL_LAYERS={"default": {"BACKEND": "memory"}})
    result = run(
        [CHANNELS, "delay", "--settings", SETTINGS, "--pythonpath", tmp_path], cwd=tmp_path
    )
    assert result.returncode == 1
    assert "lives in one process" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_delay_server_in_this_process_serves_the_memory_layer():
    layer = InMemoryChannelLayer()
    server = DelayServer(layer=layer)
    running = asyncio.create_task(server.run())
    channel = f"delayed.{random_suffix()}"
    sent_at = time.time()
    await layer.send(DELAY_CHANNEL, {"channel": channel, "content": {"n": 1}, "delay": 200})
    assert await asyncio.wait_for(layer.receive(channel), ARRIVAL_TIMEOUT) == {"n": 1}
    assert time.time() >= sent_at + 0.2
    server.stop()
    assert await asyncio.wait_for(running, ARRIVAL_TIMEOUT) == 0
    # The layer was given, so it is left open for the process that uses it.
    await layer.send(channel, {"n": 2})
    assert await layer.receive(channel) == {"n": 2}
    await layer.close()


def test_parse_delay_request_converts_milliseconds_and_checks_the_maximum():
    request = parse_delay_request({"channel": "a", "content": {"x": 1}, "delay": 1500})
    assert (request.channel, request.content, request.delay) == ("a", {"x": 1}, 1.5)
    assert parse_delay_request({"channel": "a", "content": {}, "delay": 60_000}, 60).delay == 60
    with pytest.raises(ValueError, match="without 'channel', 'content' and 'delay'"):
        parse_delay_request({})
    with pytest.raises(ImproperlyConfigured, match="positive number of seconds"):
        DelayServer(max_delay=0)
