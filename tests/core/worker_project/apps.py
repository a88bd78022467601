"""Registers the test bridge as a Channels plugin when Django starts."""

from django.apps import AppConfig


class WorkerProjectConfig(AppConfig):
    """The worker test project's app."""

    name = "worker_project"

    def ready(self) -> None:
        """Add the bridge's startup and shutdown hooks to the plugin manager."""
        from channels_core.plugins import get_registry

        from . import bridge

        get_registry().manager.register(bridge, name="worker_project_bridge")
