"""Settings of the HTTP test project."""

SECRET_KEY = "http-test-project"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels_core"]
ROOT_URLCONF = "http_project.urls"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "http_project.routing.channel_routing"},
}
CHANNELS = {
    "PROTOCOLS": ["http"],
    "OPTIONS": {
        "http": {
            "request_timeout": 1.0,
            "max_header_size": 4096,
            "max_body_size": 1024,
            "access_log": True,
        }
    },
}
