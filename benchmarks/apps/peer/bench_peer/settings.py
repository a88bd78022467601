"""Settings of the Django Channels 4.3 benchmark project (Daphne and uvicorn serve it)."""

SECRET_KEY = "http-ws-benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = "bench_peer.urls"
USE_TZ = True
ASGI_APPLICATION = "bench_peer.asgi.application"
