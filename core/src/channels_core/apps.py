"""The Django app: ``INSTALLED_APPS = [..., "channels_core"]``.

``ready()`` loads no plugin: it connects Django's ``setting_changed`` signal, so that
``override_settings(CHANNEL_LAYERS=...)`` in a test rebuilds settings, plugins and layers,
and registers a system check that reports bad ``CHANNEL_LAYERS`` and ``CHANNELS`` at
``manage.py check``.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed

from .exceptions import ImproperlyConfigured

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
    """``manage.py check``: parse ``CHANNEL_LAYERS`` and ``CHANNELS`` without loading plugins."""
    from django.conf import settings

    from .settings import parse_settings

    try:
        parse_settings(
            getattr(settings, "CHANNEL_LAYERS", None), getattr(settings, "CHANNELS", None)
        )
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), id="channels_core.E001")]
    return []


class ChannelsCoreConfig(AppConfig):
    """The ``channels_core`` Django app."""

    name = "channels_core"
    verbose_name = "Channels"

    def ready(self) -> None:
        """Connect the settings signal and register the settings check; nothing else."""
        setting_changed.connect(reset_on_setting_change, dispatch_uid="channels_core.settings")
        checks.register(check_channels_settings, checks.Tags.compatibility)
