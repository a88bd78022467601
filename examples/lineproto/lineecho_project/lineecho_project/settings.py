"""Settings of the lineecho test project."""

SECRET_KEY = "lineecho-test-project"
INSTALLED_APPS = ["channels_core"]
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "lineecho_project.routing.channel_routing"},
}
# MODE is set: serving lineecho_project.asgi:channel_layer would otherwise mean worker mode,
# as with daphne, which the in-process memory layer cannot carry.
CHANNELS = {
    "PROTOCOLS": ["lineecho"],
    "MODE": "inprocess",
    "OPTIONS": {"lineecho": {"max_line_length": 64}},
}
