"""``manage.py runserver``: Django's development server, serving HTTP and WebSocket.

It keeps Django's command line (``[addrport]``, ``--noreload``, ``--ipv6``, ``--skip-checks``,
and with ``django.contrib.staticfiles`` installed ``--nostatic`` and ``--insecure``) and its
autoreloader, and runs :func:`channels_core.server.run_server` instead of the WSGI server.
Static files under ``STATIC_URL`` are served from the staticfiles finders when ``DEBUG`` is
on (or with ``--insecure``), unless ``--nostatic``.

Django takes a command from the first app of ``INSTALLED_APPS`` that has it, so
``channels_core`` must come before ``django.contrib.staticfiles`` for this command to
replace staticfiles' ``runserver``.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connections
from django.utils import autoreload

from channels_core.cli import configure_logging
from channels_core.exceptions import ImproperlyConfigured
from channels_core.server import run_server

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as DjangoRunserver,
    )
else:
    from django.core.management.commands.runserver import Command as DjangoRunserver

logger = logging.getLogger(__name__)


class Command(DjangoRunserver):
    """Django's ``runserver`` with the Channels protocol server in place of WSGI."""

    help = "Start the Channels development server: HTTP, WebSocket and static files."

    def add_arguments(self, parser: Any) -> None:
        """Django's arguments, plus the layer alias."""
        super().add_arguments(parser)
        parser.add_argument(
            "--layer",
            default="default",
            help="The CHANNEL_LAYERS alias whose routing to serve (default: %(default)s).",
        )

    def endpoint(self) -> str:
        """The Twisted endpoint string of the address and port Django parsed."""
        if self.use_ipv6:
            # Colons in an IPv6 address must be escaped in endpoint strings.
            interface = self.addr.replace(":", "\\:")
            return f"tcp6:{self.port}:interface={interface}"
        interface = "0.0.0.0" if self.addr == "0" else self.addr
        return f"tcp:{self.port}:interface={interface}"

    def serve_static(self, options: dict[str, Any]) -> bool:
        """Whether to serve ``STATIC_URL``: staticfiles installed, DEBUG or --insecure, and
        not --nostatic (Django's rule)."""
        return bool(
            options.get("use_static_handler", False)
            and (settings.DEBUG or options.get("insecure_serving", False))
        )

    def inner_run(self, *args: Any, **options: Any) -> None:
        """Check the project, then serve until SIGTERM (or until the reloader restarts us)."""
        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
        self.check_migrations()
        for connection in connections.all(initialized_only=True):
            connection.close()
        configure_logging(options["verbosity"])
        address = f"[{self.addr}]" if self._raw_ipv6 else self.addr
        if address == "0":
            address = "0.0.0.0"
        quit_command = "CTRL-BREAK" if sys.platform == "win32" else "CONTROL-C"
        self.stdout.write(
            f"{datetime.now().strftime('%B %d, %Y - %X')}\n"
            f"Django version {self.get_version()}, using settings {settings.SETTINGS_MODULE!r}\n"
            f"Starting Channels development server at http://{address}:{self.port}/\n"
            f"Quit the server with {quit_command}."
        )
        self.stdout.flush()
        try:
            run_server(
                options={
                    "http": {"endpoint": [self.endpoint()], "static": self.serve_static(options)}
                },
                alias=options["layer"],
            )
        except Exception as error:
            # As Django's runserver: one line, and os._exit, since sys.exit does nothing in
            # the reloader's server thread.
            detail = str(error) if isinstance(error, ImproperlyConfigured) else repr(error)
            self.stderr.write(f"Error: {detail}")
            logger.debug("The server failed.", exc_info=True)
            os._exit(1)
