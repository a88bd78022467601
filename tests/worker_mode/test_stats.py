"""``channels stats`` (and ``manage.py channels stats``) against a real ``redis-server``."""

from __future__ import annotations

import asyncio
import json

import pytest

from channels_core.testing.processes import free_port
from channels_redis.layer import RedisChannelLayer

pytestmark = pytest.mark.slow


async def fill(url: str, prefix: str) -> None:
    layer = RedisChannelLayer(hosts=[url], prefix=prefix, capacity=3)
    # A process with another encryption key: what it sends, the others cannot decrypt.
    stranger = RedisChannelLayer(hosts=[url], prefix=prefix, symmetric_encryption_keys=["other"])
    try:
        for n in range(3):
            await layer.send("thumbnails", {"n": n})
        await layer.send("emails", {"n": 0})
        with pytest.raises(Exception, match="capacity"):
            await layer.send("thumbnails", {"n": 3})
        for n in range(2):
            await stranger.send("secrets", {"n": n})
        await layer.send("secrets", {"n": "readable"})
        assert await asyncio.wait_for(layer.receive("secrets"), 10) == {"n": "readable"}
    finally:
        await stranger.close()
        await layer.close()


def test_stats_shows_pending_messages_globally_and_per_channel(project):
    asyncio.run(fill(project.env["WM_REDIS_URL"], project.env["WM_PREFIX"]))
    result = project.run("stats", "--json", "--channel", "thumbnails", "--channel", "idle")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["layer"] == "default"
    assert report["backend"] == "RedisChannelLayer"
    assert report["total"]["pending"] == 4
    assert report["total"]["full_count"] == 1
    assert report["total"]["dropped"] == 2
    assert report["total"]["oldest_age"] >= 0
    assert report["channels"]["thumbnails"]["pending"] == 3
    assert report["channels"]["thumbnails"]["full_count"] == 1
    assert report["channels"]["thumbnails"]["dropped"] == 0
    assert report["channels"]["idle"] == {
        "pending": 0,
        "oldest_age": None,
        "full_count": 0,
        "dropped": 0,
    }

    table = project.run(
        "channels", "stats", "--channel", "emails", "--channel", "secrets", manage=True
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "Layer 'default' (RedisChannelLayer)"
    assert lines[1].split() == [
        *("CHANNEL", "PENDING", "OLDEST", "REFUSED", "(FULL)", "DROPPED", "(UNREADABLE)")
    ]
    assert lines[3].split()[:3] == ["(all", "channels)", "4"]
    assert lines[3].split()[-2:] == ["1", "2"]
    assert lines[4].split()[:2] == ["emails", "1"]
    assert lines[4].split()[3:] == ["0", "0"]
    assert lines[5].split() == ["secrets", "0", "-", "0", "2"]


def test_stats_of_an_unreachable_layer_is_one_clear_sentence(project):
    result = project.run("stats", WM_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 1
    # The layer may log its own warning first; the command's last line says what failed.
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("channels stats: the layer 'default' cannot be reached: ")
    assert "'hosts'" in last_line
    assert "Traceback" not in result.stderr


def test_stats_rejects_a_bad_channel_name(project):
    result = project.run("stats", "--channel", "bad name")
    assert result.returncode == 1
    assert "bad name" in result.stderr
    assert "Traceback" not in result.stderr
