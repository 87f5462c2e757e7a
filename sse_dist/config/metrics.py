"""The Prometheus exporter's settings, a section of every stage that serves metrics (``preprocess.metrics``,
``train.metrics``)."""

from __future__ import annotations

from dataclasses import dataclass

from .loader import require


@dataclass
class MetricsConfig:
    address: str = "127.0.0.1"
    """Address the Prometheus exporter binds (loopback by default; ``0.0.0.0`` in a pod)."""
    port: int = 0
    """Exporter port (training: that of local rank 0, rank r uses port + r); 0 disables the exporter."""
    final_scrape_s: float = 0.0
    """Seconds the exporter keeps serving after the stage ends, so that a run shorter than one scrape interval,
    or one ending between two scrapes, still has its final counters scraped; 0 closes it at once."""

    def validate(self) -> None:
        require(0 <= self.port < 65536, "port", "must be in [0, 65535]")
        require(self.final_scrape_s >= 0, "final_scrape_s", "must be >= 0")
