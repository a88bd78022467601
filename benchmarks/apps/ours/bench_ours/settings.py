"""Settings of the benchmark project served by ``channels serve``."""

import os

SECRET_KEY = "http-ws-benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels_core"]
ROOT_URLCONF = "bench_ours.urls"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "memory",
        "ROUTING": "bench_ours.routing.channel_routing",
        # benchmarks/recovery.py: the room keeps its last 1,000 messages.
        "CONFIG": {"history": {"bench-room": {"size": 1000}}},
    },
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"], "MODE": "inprocess"}

# The ours-metrics contender of http_ws.py: the same server with channels-metrics serving
# Prometheus text beside it (its counters observed, as when something scrapes it).
if os.environ.get("BENCH_METRICS"):
    CHANNELS["PROTOCOLS"].append("metrics")
    CHANNELS["OPTIONS"] = {"metrics": {"listen": "127.0.0.1:0"}}
