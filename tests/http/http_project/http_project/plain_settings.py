"""A plain Django project's settings: nothing about Channels but the app."""

SECRET_KEY = "http-test-project"
INSTALLED_APPS = ["channels_core"]
ROOT_URLCONF = "http_project.urls"
USE_TZ = True
CHANNELS = {"PROTOCOLS": ["http"]}
