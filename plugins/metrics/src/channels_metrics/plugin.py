"""The hook implementations: the ``metrics`` protocol, its ``listen`` option and shut-down."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from channels_core import hookimpl
from channels_core.protocols import Option, ProtocolSpec

NAME = "metrics"
DEFAULT_LISTEN = "127.0.0.1:9100"
#: The variable that turns on prometheus_client's multiprocess mode (``--processes``).
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def parse_listen(value: Any) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:9100"`` for IPv6) as ``(host, port)``; port 0 is a free one.

    Raises :class:`ValueError` with a sentence saying what to write.
    """
    host, separator, port = str(value).rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if not separator:
            raise ValueError
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an address to serve metrics on: write HOST:PORT with an IP "
            f"address, such as {DEFAULT_LISTEN} or [::1]:9100"
        ) from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{value!r} has the port {number}: use a port between 0 and 65535")
    return host, number


def endpoint(value: str) -> str:
    """The Twisted endpoint string of a ``listen`` address: ``tcp:9100:interface=127.0.0.1``."""
    host, port = parse_listen(value)
    # A colon separates an endpoint's arguments, so an IPv6 address escapes its own.
    interface = host.replace(":", "\\:")
    return f"tcp:{port}:interface={interface}"


OPTIONS = (
    Option(
        "listen",
        help="The address to serve GET /metrics on, HOST:PORT (port 0 for a free one).",
        default=DEFAULT_LISTEN,
        flags=("--metrics",),
        validator=parse_listen,
    ),
)


def multiprocess_dir() -> str | None:
    """Where the processes of a run share their figures: ``PROMETHEUS_MULTIPROC_DIR`` when
    set, else a folder of the run directory ``channels serve --processes`` gives its children
    (``CHANNELS_RUN_DIR``, which it empties at start and removes at exit); None for one
    process."""
    from channels_core.supervisor import ENV_RUN_DIR

    given = os.environ.get(MULTIPROC_DIR)
    if given:
        return given
    run_dir = os.environ.get(ENV_RUN_DIR)
    if not run_dir:
        return None
    path = os.path.join(run_dir, "prometheus")
    os.makedirs(path, exist_ok=True)
    # prometheus_client chooses its multiprocess values by this variable when imported.
    os.environ[MULTIPROC_DIR] = path
    return path


def listeners(server: Any) -> list:
    """The metrics page's listener and, with several processes, the task publishing this
    process's figures every second for the others' scrapes."""
    from channels_core.listeners import StreamListener, TaskListener

    # Before prometheus_client is imported: it picks its multiprocess values when it is.
    directory = multiprocess_dir()

    from .collector import HostMetrics
    from .exposition import metrics_site

    metrics = HostMetrics(server, multiprocess_dir=directory)
    opened = [StreamListener(endpoint(server.option(NAME, "listen")), metrics_site(metrics))]
    if metrics.multiprocess:
        opened.append(TaskListener(metrics.publish, description="metrics publisher"))
    return opened


@hookimpl
def channels_register_protocols(register) -> None:
    """The ``metrics`` protocol: a listener serving Prometheus's text format."""
    register(
        ProtocolSpec(
            name=NAME,
            listeners=listeners,
            options=OPTIONS,
            description="Prometheus metrics of the server on GET /metrics.",
        )
    )


@hookimpl
def channels_shutdown(server) -> None:
    """With several processes, forget this process's gauges (its counts stay in the sums)."""
    served = getattr(server, "protocols", ())
    if os.environ.get(MULTIPROC_DIR) and any(spec.name == NAME for spec in served):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
