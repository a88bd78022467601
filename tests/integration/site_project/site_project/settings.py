"""Settings of the site project."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "site-test-project"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
# channels_core before django.contrib.staticfiles: its runserver replaces staticfiles'.
INSTALLED_APPS = ["channels_core", "django.contrib.staticfiles"]
# Never opened by the tests; the live-server test points it elsewhere.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "unused.sqlite3"}}
ROOT_URLCONF = "site_project.urls"
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "site_project.routing.channel_routing"},
}
CHANNELS = {"PROTOCOLS": ["http", "websocket"]}
