"""The HTTP test project with a bad protocol option: the workers must refuse to boot."""

from http_project.settings import *  # noqa: F403

CHANNELS = {"PROTOCOLS": ["http"], "OPTIONS": {"http": {"http_timeout": -1}}}
