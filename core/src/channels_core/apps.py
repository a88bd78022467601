"""The Django app: ``INSTALLED_APPS = [..., "channels_core"]``.

``ready()`` loads no plugin: it registers the data bindings
(:mod:`channels_core.binding`), connects Django's ``setting_changed`` signal, so that
``override_settings(CHANNEL_LAYERS=...)`` in a test rebuilds settings, plugins and layers,
and registers a system check that runs, at ``manage.py check``, the checks start-up makes
(settings, plugins, protocols, layers, routing; :mod:`channels_core.checks`).
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed

WATCHED_SETTINGS = frozenset({"CHANNEL_LAYERS", "CHANNELS"})


def reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    """Forget the cached settings, registry and layers when Channels' settings change."""
    if setting not in WATCHED_SETTINGS:
        return
    from .layers import channel_layers
    from .plugins import reset_registry
    from .settings import reset_settings

    reset_settings()
    reset_registry()
    channel_layers.reset()


def check_channels_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``manage.py check``: what start-up would refuse (an Error each) or warn about (a
    Warning each), in the sentences start-up says; see :mod:`channels_core.checks`."""
    from .checks import configuration_problems

    return [
        (checks.Error if problem.is_error else checks.Warning)(
            problem.message, id=f"channels_core.{problem.code}"
        )
        for problem in configuration_problems()
    ]


class ChannelsCoreConfig(AppConfig):
    """The ``channels_core`` Django app."""

    name = "channels_core"
    verbose_name = "Channels"

    def ready(self) -> None:
        """Connect the settings signal, register the settings check, and register the data
        bindings (importing each installed app's ``bindings`` module)."""
        from .binding import register_bindings

        setting_changed.connect(reset_on_setting_change, dispatch_uid="channels_core.settings")
        checks.register(check_channels_settings, checks.Tags.compatibility)
        register_bindings()
