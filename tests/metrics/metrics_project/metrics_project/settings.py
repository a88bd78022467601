"""Settings of the metrics test project; the tests enable the protocols on the command line.

The layer is the memory layer, or an IPC layer in ``METRICS_IPC_PATH`` when it is set (for
``--processes``, whose children must share one).
"""

import os

SECRET_KEY = "metrics-tests"
INSTALLED_APPS = ["channels_core"]
USE_TZ = True
ROOT_URLCONF = "metrics_project.urls"
ROUTING = "metrics_project.routing.channel_routing"
if os.environ.get("METRICS_IPC_PATH"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "ipc",
            "ROUTING": ROUTING,
            "CONFIG": {"path": os.environ["METRICS_IPC_PATH"]},
        },
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "memory", "ROUTING": ROUTING}}
