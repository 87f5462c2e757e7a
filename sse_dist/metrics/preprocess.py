"""Preprocessing metrics, kept by the Ray driver as shard tasks finish (the tasks themselves export nothing)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..config import MetricsConfig
from .exporter import Exporter

_SHARD_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)


class PreprocessMetrics:
    def __init__(self, cfg: MetricsConfig, shards: int):
        self.registry = r = CollectorRegistry()
        self.inputs = Counter(
            "sse_preprocess_input_utterances",
            "Utterances of the finished shards (processed + quarantined)",
            registry=r,
        )
        self.processed = Counter(
            "sse_preprocess_utterances_processed", "Utterances that got features", registry=r
        )
        self.quarantined = Counter(
            "sse_preprocess_utterances_quarantined",
            "Utterances quarantined (unreadable or unusable audio)",
            registry=r,
        )
        self.phones_failed = Counter(
            "sse_preprocess_phones_failed",
            "Utterances with features that the phone source could not label",
            registry=r,
        )
        self.shards = Counter("sse_preprocess_shards", "Shards finished by this run", registry=r)
        self.remaining = Gauge(
            "sse_preprocess_shards_remaining", "Shards of this run not finished yet", registry=r
        )
        self.shard_time = Histogram(
            "sse_preprocess_shard_seconds", "Wall time of one shard task", buckets=_SHARD_BUCKETS, registry=r
        )
        self.remaining.set(shards)
        self.exporter = Exporter(r, cfg.address, cfg.port, cfg.final_scrape_s) if cfg.port else None

    def shard(self, result: dict[str, Any]) -> None:
        """Account for one finished shard of either stage (fbank, then a phone field)."""
        if "failed" in result:
            # A phone field's shard: its utterances were already counted when the fbank stage read the audio.
            self.phones_failed.inc(len(result["failed"]))
        else:
            self.inputs.inc(result["input"])
            self.processed.inc(result["processed"])
            self.quarantined.inc(len(result["quarantined"]))
        self.shards.inc()
        self.remaining.dec()
        self.shard_time.observe(result["seconds"])

    def close(self) -> None:
        if self.exporter is not None:
            self.exporter.close()
