"""Prometheus metrics: names follow Prometheus conventions (``sse_`` prefix, base units, ``_total`` counters).

Each process serves its own registry on ``address:port`` (rank r of a node on ``port + r``); every series
carries a ``rank`` label so a PodMonitor scraping all ranks can tell them apart.
"""

from .exporter import Exporter
from .train import TrainMetrics

__all__ = ["Exporter", "TrainMetrics"]
