"""Settings of the browser client's test project, served by ``channels serve``.

channels.js comes from ``channels_ws``' static folder through staticfiles' finders (the HTTP
protocol's ``static`` option). Groups ``room-*`` keep 100 messages, ``small-*`` only 3, and
``presence-kept`` (a presence room) 100 too.
"""

SECRET_KEY = "client-test-project"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "channels_core",
    "django.contrib.staticfiles",
    "channels_ws",
    "client_project",
]
ROOT_URLCONF = "client_project.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
STATIC_URL = "static/"
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "memory",
        "ROUTING": "client_project.routing.channel_routing",
        "CONFIG": {
            "history": {
                "room-*": {"size": 100},
                "small-*": {"size": 3},
                "presence-kept": {"size": 100},
            },
        },
    },
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"], "OPTIONS": {"http": {"static": True}}}
