"""Settings of the hello example: one worker on the embedded memory layer."""

SECRET_KEY = "hello-example-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels_core", "greetings"]
DATABASES = {}
USE_TZ = True

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "memory",
        "ROUTING": "greetings.routing.channel_routing",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"channels_core": {"handlers": ["console"], "level": "INFO"}},
}
