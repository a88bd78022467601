"""The site project with DEBUG off: runserver serves static files only with --insecure."""

from .settings import *  # noqa: F403

DEBUG = False
