"""Settings of the SMS test project: a memory layer, or Redis when SMS_REDIS_URL is set."""

import os

SECRET_KEY = "sms-test-project"
INSTALLED_APPS = ["channels_core"]
USE_TZ = True
ROUTING = "sms_project.routing.channel_routing"
if os.environ.get("SMS_REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "redis",
            "ROUTING": ROUTING,
            "CONFIG": {"hosts": [os.environ["SMS_REDIS_URL"]], "prefix": os.environ["SMS_PREFIX"]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "memory", "ROUTING": ROUTING}}
CHANNELS = {"PROTOCOLS": ["sms"]}
