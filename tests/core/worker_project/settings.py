"""Settings of the worker test project."""

import os

SECRET_KEY = "worker-project-tests"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels_core",
    "worker_project.apps.WorkerProjectConfig",
]
DATABASES = {}
USE_TZ = True
# A worker needs a layer other processes reach: an IPC layer in the test's directory.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "ipc",
        "ROUTING": "worker_project.routing.channel_routing",
        "CONFIG": {"path": os.path.join(os.environ.get("WORKER_TEST_DIR", "."), "ipc")},
    },
}
