"""Where the IPC layer keeps its state: the directory from its ``path`` or ``name`` option."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from channels_core.exceptions import ImproperlyConfigured

_NAME_RE = re.compile(r"[a-zA-Z0-9._-]+\Z")


def default_path(name: str | None = None) -> Path:
    """The directory used when no ``path`` is given: one per user and per *name*.

    *name* defaults to ``DJANGO_SETTINGS_MODULE`` (so the processes of one project share it
    and two projects do not), or ``"default"`` outside Django.
    """
    if name is None:
        name = os.environ.get("DJANGO_SETTINGS_MODULE") or "default"
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ImproperlyConfigured(
            f"IPC layer option 'name' is {name!r}; it must be a non-empty string of "
            "[a-zA-Z0-9._-], such as 'mysite'."
        )
    return Path(tempfile.gettempdir()) / f"channels-ipc-{os.getuid()}" / name


def layer_directory(path: Any, name: str | None) -> Path:
    """The layer's directory, created if missing; ImproperlyConfigured when unusable."""
    if path is None:
        directory = default_path(name)
    elif name is not None:
        raise ImproperlyConfigured(
            f"IPC layer options 'path' ({path!r}) and 'name' ({name!r}) are both set; 'name' "
            "only picks the default path: give one of them."
        )
    elif isinstance(path, (str, os.PathLike)) and str(path):
        directory = Path(path).expanduser()
    else:
        raise ImproperlyConfigured(
            f"IPC layer option 'path' is {path!r}; it must be a directory path such as "
            "'/run/mysite/channels'."
        )
    if directory.exists() and not directory.is_dir():
        raise ImproperlyConfigured(
            f"IPC layer option 'path' is {str(directory)!r}, which is a file: the layer needs "
            "a directory of its own there; point 'path' at a directory."
        )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ImproperlyConfigured(
            f"The IPC layer cannot create its directory {str(directory)!r} ({error.strerror}): "
            "point 'path' at a directory this user may write."
        ) from error
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ImproperlyConfigured(
            f"The IPC layer's directory {str(directory)!r} is not writable by this user: "
            "fix its permissions or point 'path' at a directory this user may write."
        )
    return directory
