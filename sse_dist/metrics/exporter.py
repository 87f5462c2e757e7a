"""A metrics HTTP endpoint bound to a configured address (loopback unless told otherwise)."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


class Exporter:
    def __init__(self, registry: CollectorRegistry, address: str, port: int, final_scrape_s: float = 0.0):
        self.server, self.thread = start_http_server(port, addr=address, registry=registry)
        self.address = address
        self.port = self.server.server_port
        self.final_scrape_s = final_scrape_s
        log.info("metrics on http://%s:%d/metrics", address, self.port)

    def close(self) -> None:
        if self.final_scrape_s:
            log.info("metrics stay up %.0f s for a final scrape", self.final_scrape_s)
            time.sleep(self.final_scrape_s)
        self.server.shutdown()
        self.server.server_close()
