"""Settings of the worker test project."""

SECRET_KEY = "worker-project-tests"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels_core",
    "worker_project.apps.WorkerProjectConfig",
]
DATABASES = {}
USE_TZ = True
CHANNEL_LAYERS = {
    "default": {"BACKEND": "memory", "ROUTING": "worker_project.routing.channel_routing"},
}
