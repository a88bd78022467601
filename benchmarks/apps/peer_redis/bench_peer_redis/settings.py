"""Settings of the broadcast benchmark on Django Channels 4.3 and channels_redis 4.3 (Daphne).

``BENCH_REDIS_URL`` names the ``redis-server``; ``BENCH_PEER_LAYER`` picks channels_redis's
``core`` layer (the default) or its ``pubsub`` layer. ``benchmarks/layer_redis.py`` sets both.
"""

import os

SECRET_KEY = "redis-broadcast-benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = "bench_peer_redis.urls"
USE_TZ = True
ASGI_APPLICATION = "bench_peer_redis.asgi.application"
_BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": _BACKENDS[os.environ.get("BENCH_PEER_LAYER", "core")],
        "CONFIG": {"hosts": [os.environ["BENCH_REDIS_URL"]]},
    },
}
