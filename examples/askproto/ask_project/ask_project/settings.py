"""Settings of the ask project."""

import os

SECRET_KEY = "ask-example-project"
INSTALLED_APPS = ["channels_core"]
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "ask_project.routing.channel_routing"},
    # A layer that holds one question at a time, to see BUSY without a fleet of workers:
    # channels serve --layer one --mode worker, with no channels worker running. Worker mode
    # needs a layer other processes reach (channels-ipc); ASK_IPC_PATH picks its directory.
    "one": {
        "BACKEND": "ipc",
        "ROUTING": "ask_project.routing.channel_routing",
        "CONFIG": {
            "path": os.environ.get("ASK_IPC_PATH"),
            "channel_capacity": {"ask.request": 1},
        },
    },
}
CHANNELS = {"PROTOCOLS": ["ask"], "OPTIONS": {"ask": {"reply_timeout": 2.0}}}
