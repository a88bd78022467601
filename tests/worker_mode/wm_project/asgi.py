"""The Channels 1 entry point: ``channels serve wm_project.asgi:channel_layer``, which,
as for ``daphne``, needs no ``--settings``: this module names them."""

import os

from channels_core import get_channel_layer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wm_project.settings")

channel_layer = get_channel_layer()
