"""Settings of the WebSocket broadcast benchmark served by ``channels serve``.

The Redis layer's URL comes from ``BENCH_REDIS_URL``, set by ``benchmarks/layer_redis.py``
to the ``redis-server`` it started.
"""

import os

SECRET_KEY = "redis-broadcast-benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels_core"]
ROOT_URLCONF = "bench_ours_redis.urls"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "redis",
        "ROUTING": "bench_ours_redis.routing.channel_routing",
        "CONFIG": {"hosts": [os.environ["BENCH_REDIS_URL"]]},
    },
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"], "MODE": "inprocess"}
