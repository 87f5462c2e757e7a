"""Training metrics, updated by the training loop once per optimizer step (and per logging window)."""

from __future__ import annotations

import torch
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..config import MetricsConfig
from .exporter import Exporter

_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_CHECKPOINT_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class TrainMetrics:
    def __init__(self, cfg: MetricsConfig, rank: int, local_rank: int):
        self.registry = CollectorRegistry()
        r = self.registry
        self.labels = {"rank": str(rank)}
        lab = ["rank"]
        self.steps = Counter("sse_train_steps", "Optimizer steps taken by this process", lab, registry=r)
        self.global_step = Gauge(
            "sse_train_global_step",
            "Optimizer step the run has reached (continues across resumes)",
            lab,
            registry=r,
        )
        self.samples = Counter("sse_train_samples", "Segment pairs trained on", lab, registry=r)
        self.frames = Counter(
            "sse_train_frames", "Feature frames trained on (source + target)", lab, registry=r
        )
        self.skipped = Counter(
            "sse_train_skipped_samples", "Utterances the loader could not use", [*lab, "reason"], registry=r
        )
        self.loss = Gauge("sse_train_loss", "Latest loss by component", [*lab, "component"], registry=r)
        self.lr = Gauge("sse_train_learning_rate", "Current learning rate", lab, registry=r)
        self.throughput = Gauge(
            "sse_train_samples_per_second",
            "Segment pairs per second over the last logging window",
            lab,
            registry=r,
        )
        self.frame_rate = Gauge(
            "sse_train_frames_per_second",
            "Feature frames per second over the last logging window",
            lab,
            registry=r,
        )
        self.step_time = Histogram(
            "sse_train_step_seconds",
            "Wall time of one optimizer step",
            lab,
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.data_wait = Histogram(
            "sse_train_data_wait_seconds",
            "Time waiting for the next batch",
            lab,
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.checkpoint_time = Histogram(
            "sse_train_checkpoint_seconds",
            "Wall time of saving a checkpoint (and uploading it, for an object-store output)",
            lab,
            buckets=_CHECKPOINT_BUCKETS,
            registry=r,
        )
        self.gpu_memory = Gauge(
            "sse_train_gpu_memory_bytes",
            "GPU memory of this rank's device: allocated, reserved by the caching allocator, peak allocated",
            [*lab, "kind"],
            registry=r,
        )
        self.exporter = (
            Exporter(r, cfg.address, cfg.port + local_rank, cfg.final_scrape_s) if cfg.port else None
        )

    def step(
        self,
        seconds: float,
        wait: float,
        samples: int,
        frames: int,
        skipped: dict[str, int],
        global_step: int,
    ) -> None:
        self.steps.labels(**self.labels).inc()
        self.global_step.labels(**self.labels).set(global_step)
        self.samples.labels(**self.labels).inc(samples)
        self.frames.labels(**self.labels).inc(frames)
        for reason, n in skipped.items():
            self.skipped.labels(**self.labels, reason=reason).inc(n)
        self.step_time.labels(**self.labels).observe(seconds)
        self.data_wait.labels(**self.labels).observe(wait)

    def log(
        self, losses: dict[str, float], lr: float, samples_per_second: float, frames_per_second: float
    ) -> None:
        for name, value in losses.items():
            self.loss.labels(**self.labels, component=name).set(value)
        self.lr.labels(**self.labels).set(lr)
        self.throughput.labels(**self.labels).set(samples_per_second)
        self.frame_rate.labels(**self.labels).set(frames_per_second)
        if torch.cuda.is_available():
            for kind, value in (
                ("allocated", torch.cuda.memory_allocated()),
                ("reserved", torch.cuda.memory_reserved()),
                ("peak", torch.cuda.max_memory_allocated()),
            ):
                self.gpu_memory.labels(**self.labels, kind=kind).set(value)

    def close(self) -> None:
        if self.exporter is not None:
            self.exporter.close()
