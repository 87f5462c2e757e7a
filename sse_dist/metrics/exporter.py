"""A metrics HTTP endpoint bound to a configured address (loopback unless told otherwise)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


class Exporter:
    def __init__(self, registry: CollectorRegistry, address: str, port: int):
        self.server, self.thread = start_http_server(port, addr=address, registry=registry)
        self.address = address
        self.port = self.server.server_port
        log.info("metrics on http://%s:%d/metrics", address, self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
