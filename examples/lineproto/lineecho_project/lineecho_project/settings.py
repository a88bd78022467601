"""Settings of the lineecho test project."""

SECRET_KEY = "lineecho-test-project"
INSTALLED_APPS = ["channels_core"]
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "lineecho_project.routing.channel_routing"},
}
CHANNELS = {"PROTOCOLS": ["lineecho"], "OPTIONS": {"lineecho": {"max_line_length": 64}}}
