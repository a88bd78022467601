"""channels-redis: the Redis channel layer, shared by every process that reaches the server."""

from __future__ import annotations

from .layer import RedisChannelLayer

__all__ = ["RedisChannelLayer"]
