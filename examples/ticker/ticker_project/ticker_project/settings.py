"""Settings of the ticker project."""

import os

SECRET_KEY = "ticker-example-project"
INSTALLED_APPS = ["channels_core"]
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "ticker_project.routing.channel_routing"},
}
CHANNELS = {"PROTOCOLS": ["ticker"], "OPTIONS": {"ticker": {"interval": 1.0, "name": "clock"}}}
# Where the record consumer appends the ticks, one JSON object a line.
TICKS_FILE = os.environ.get("TICKS_FILE", "ticks.jsonl")
