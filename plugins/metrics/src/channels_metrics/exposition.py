"""The metrics page: ``GET /metrics`` in Prometheus's text format, served by ``twisted.web``.

The page is rendered on the host's loop (the counters are read there), without blocking the
reactor: the request waits while the layer's figures are read. Nothing else is served (404),
and requests are not logged one by one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

if TYPE_CHECKING:
    from .collector import HostMetrics

logger = logging.getLogger(__name__)


class MetricsPage(Resource):
    """``/metrics``: a scrape of :class:`~channels_metrics.collector.HostMetrics`."""

    isLeaf = True

    def __init__(self, metrics: HostMetrics) -> None:
        super().__init__()
        self.metrics = metrics

    def render_GET(self, request: Any) -> Any:
        """Answer once the metrics are up to date; HEAD is answered the same, without a body."""
        gone: list[Any] = []
        request.notifyFinish().addErrback(gone.append)
        self.metrics.host.spawn(self._answer(request, gone))
        return NOT_DONE_YET

    async def _answer(self, request: Any, gone: list) -> None:
        accept = request.getHeader(b"accept")
        try:
            page, content_type = await self.metrics.scrape(
                accept.decode("latin-1") if accept else None
            )
        except Exception:
            logger.exception("Reading the metrics failed; answering 500.")
            request.setResponseCode(500)
            page = b"The metrics could not be read; see the server's log.\n"
            content_type = "text/plain; charset=utf-8"
        request.setHeader(b"content-type", content_type.encode())
        if not gone:  # the scraper may have hung up meanwhile
            request.write(page)
            request.finish()


class QuietSite(Site):
    """A :class:`~twisted.web.server.Site` that does not log every scrape."""

    def log(self, request: Any) -> None:
        """Log nothing per request: a scrape every few seconds would fill the log."""


def metrics_site(metrics: HostMetrics) -> Site:
    """The Twisted factory of the metrics listener: ``/metrics``, and 404 elsewhere."""
    root = Resource()
    root.putChild(b"metrics", MetricsPage(metrics))
    site = QuietSite(root)
    site.displayTracebacks = False
    return site
