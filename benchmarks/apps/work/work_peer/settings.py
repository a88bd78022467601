"""Settings of the Django Channels 4.3 project of the processes benchmark (uvicorn and Granian
serve it, each worker on its own; no channel layer, as no consumer uses one)."""

SECRET_KEY = "processes-benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = "work_peer.urls"
USE_TZ = True
ASGI_APPLICATION = "work_peer.asgi.application"
