"""Prometheus metrics: names follow Prometheus conventions (``sse_`` prefix, base units, ``_total`` counters).

Each process serves its own registry on ``address:port``: training rank r of a node on ``port + r``, every
series labelled with its ``rank`` so a PodMonitor scraping all ranks can tell them apart; the preprocessing
driver on ``port``. Each class's ``registry`` holds its series (``tests/metrics/test_metrics_monitoring.py``
checks that dashboards and alerts name only series these registries define).
"""

from .exporter import Exporter
from .preprocess import PreprocessMetrics
from .train import TrainMetrics

__all__ = ["Exporter", "PreprocessMetrics", "TrainMetrics"]
