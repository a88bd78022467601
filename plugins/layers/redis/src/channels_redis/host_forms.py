"""The forms of a ``hosts`` entry, and the :class:`~channels_redis.hosts.Shard` each makes.

A ``hosts`` entry is a URL (``redis://``, ``rediss://`` for TLS, ``unix://``), a ``(host,
port)`` pair, a dict with ``"address"`` and redis-py options (TLS certificates, a password), a
Sentinel (``{"sentinels": [(host, port)], "master_name": "mymaster"}``) or a whole Redis
Cluster (``{"cluster": [URL or pair, ...]}``). A bad entry raises ImproperlyConfigured
naming the entry and every form, when the layer is built rather than at its first call.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException

from channels_core.exceptions import ImproperlyConfigured

from .hosts import CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Shard

DEFAULT_HOST = "redis://127.0.0.1:6379/0"
# redis-py's own pools serve only the layer's occasional calls (statistics, flush, group
# members, pings), which the shard already bounds: their limit must never be what refuses one.
_REDIS_PY_POOL_SIZE = 2**31 - 1
_URL_SCHEMES = ("redis://", "rediss://", "unix://")


def _defaults() -> dict[str, Any]:
    return {
        "socket_timeout": None,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": _REDIS_PY_POOL_SIZE,
    }


def _pair_url(host: Any) -> str | None:
    if (
        isinstance(host, (tuple, list))
        and len(host) == 2
        and isinstance(host[0], str)
        and isinstance(host[1], int)
    ):
        return f"redis://{host[0]}:{host[1]}/0"
    return None


def _address_url(address: Any) -> str | None:
    if isinstance(address, str) and address.startswith(_URL_SCHEMES):
        return address
    return _pair_url(address)


def _redacted(url: str) -> str:
    """*url* without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + parts.netloc.rpartition("@")[2]).geturl()


_HOST_FORMS = (
    "a URL ('redis://127.0.0.1:6379/0', 'rediss://...', 'unix:///run/redis.sock?db=0'), "
    "a (host, port) pair, {'address': URL, **redis_py_options}, "
    "{'sentinels': [(host, port)], 'master_name': 'mymaster'} or "
    "{'cluster': ['redis://host:port']}"
)


def _bad_host(host: Any, why: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Redis layer host {host!r} {why}; a host is {_HOST_FORMS}.")


def make_shard(host: Any, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> Shard:
    """The :class:`Shard` of one ``hosts`` entry; ImproperlyConfigured for a bad one."""
    if isinstance(host, dict):
        options = dict(host)
        if "max_connections" in options:
            raise _bad_host(
                host,
                "sets 'max_connections', which the layer manages itself: set the layer option "
                "max_connections (calls at once per server) instead",
            )
        if "cluster" in options:
            return _cluster_shard(host, options, max_connections)
        if "sentinels" in options:
            return _sentinel_shard(host, options, max_connections)
        if "address" not in options:
            raise _bad_host(host, "has none of the keys 'address', 'sentinels' or 'cluster'")
        url = _address_url(options.pop("address"))
        if url is None:
            raise _bad_host(host, "has an 'address' that is neither a URL nor a (host, port)")
    else:
        options = {}
        url = _address_url(host)
        if url is None:
            raise _bad_host(host, "is neither a URL nor a (host, port) pair")

    def factory() -> tuple[aioredis.Redis, list]:
        return aioredis.Redis.from_url(url, **{**_defaults(), **options}), []

    try:
        # Building one connection object checks the options now rather than at the first call.
        pool = factory()[0].connection_pool
        pool.connection_class(**pool.connection_kwargs)
    except (TypeError, ValueError) as error:
        raise _bad_host(host, f"cannot be used ({error})") from error
    return Shard(_redacted(url), factory, max_connections=max_connections)


def _sentinel_shard(host: dict, options: dict[str, Any], max_connections: int) -> Shard:
    sentinels = options.pop("sentinels")
    master_name = options.pop("master_name", None)
    sentinel_options = options.pop("sentinel_kwargs", None) or {}
    if not isinstance(master_name, str) or not master_name:
        raise _bad_host(host, "has 'sentinels' but no 'master_name' (such as 'mymaster')")
    if not sentinels or not all(_pair_url(pair) for pair in sentinels):
        raise _bad_host(host, "has 'sentinels' that are not a list of (host, port) pairs")

    def factory() -> tuple[aioredis.Redis, list]:
        sentinel = Sentinel(
            [tuple(pair) for pair in sentinels],
            sentinel_kwargs={**_defaults(), **sentinel_options},
            **{**_defaults(), **options},
        )
        return sentinel.master_for(master_name), list(sentinel.sentinels)

    try:
        factory()
    except (TypeError, ValueError) as error:
        raise _bad_host(host, f"cannot be used ({error})") from error
    where = ",".join(f"{address}:{port}" for address, port in sentinels)
    return Shard(f"sentinel://{where}/{master_name}", factory, max_connections=max_connections)


def _cluster_shard(host: dict, options: dict[str, Any], max_connections: int) -> Shard:
    startup = options.pop("cluster")
    urls = [_address_url(node) for node in startup] if isinstance(startup, (list, tuple)) else []
    if not urls or None in urls:
        raise _bad_host(host, "has a 'cluster' that is not a list of node URLs or pairs")
    nodes = []
    for url in urls:
        parts = urlsplit(url)
        nodes.append(ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379))
        if parts.password:
            options.setdefault("password", parts.password)
        if parts.scheme == "rediss":
            options.setdefault("ssl", True)
    node_options = {**_defaults(), **options}

    def factory() -> tuple[RedisCluster, list]:
        startup_nodes = [ClusterNode(node.host, node.port) for node in nodes]
        return RedisCluster(startup_nodes=startup_nodes, **{**node_options, "retry": None}), []

    try:
        factory()
    except (TypeError, ValueError, RedisClusterException) as error:
        raise _bad_host(host, f"cannot be used ({error})") from error
    name = "cluster://" + ",".join(f"{node.host}:{node.port}" for node in nodes)
    return Shard(
        name,
        factory,
        is_cluster=True,
        node_options=node_options,
        max_connections=max_connections,
    )
