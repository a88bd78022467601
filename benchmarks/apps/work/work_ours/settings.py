"""Settings of the processes benchmark served by ``channels serve --processes N``.

The processes share an ``ipc`` layer in ``BENCH_IPC_PATH``, a fresh temporary directory that
``benchmarks/processes.py`` makes for each server it starts.
"""

import os

SECRET_KEY = "processes-benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels_core"]
ROOT_URLCONF = "work_ours.urls"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "ipc",
        "ROUTING": "work_ours.routing.channel_routing",
        "CONFIG": {"path": os.environ["BENCH_IPC_PATH"]},
    },
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"], "MODE": "inprocess"}
