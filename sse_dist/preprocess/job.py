"""``sse-dist preprocess``: a Ray job with one task per audio shard (features + phones).

The driver joins the cluster named by config or ``RAY_ADDRESS`` (``ray job submit`` and KubeRay set it), or
starts a local one, so the same command runs on a laptop and on a cluster. Tasks write their outputs straight
to storage and return only a small summary, so nothing large passes through Ray's object store.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import Any

import ray
from tqdm import tqdm

from .. import storage
from ..config import PreprocessConfig
from ..metrics import PreprocessMetrics
from ..phoneset import NUM_PHONES
from ..shard import format as fmt
from .shard_task import FBANK, is_done, process_shard

log = logging.getLogger(__name__)


def connect(cfg: PreprocessConfig) -> bool:
    """Join or start Ray; True if this call started a local cluster (which the caller then shuts down)."""
    if ray.is_initialized():
        return False
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS", "")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return False
    ray.init(num_cpus=cfg.num_cpus or None, include_dashboard=False, logging_level=logging.WARNING)
    return True


def _field_summaries(root: str, cfg: PreprocessConfig, names: list[str]) -> dict[str, dict[str, Any]]:
    """Totals over every shard of the set (this run's and earlier runs'), written beside each field."""
    out = {}
    for field in (FBANK, cfg.phones.field):
        done = [storage.read_json(fmt.done_url(root, field, n)) for n in names]
        quarantined = [q for d in done for q in d["quarantined"]]
        summary = {
            "field": field,
            "shards": len(done),
            "input": sum(d["input"] for d in done),
            "processed": sum(d["processed"] for d in done),
            "quarantined": len(quarantined),
            "unexpected": sum(len(d["unexpected"]) for d in done),
        }
        if field == FBANK:
            summary |= {"feat_dim": cfg.features.num_mel_bins, "features": asdict(cfg.features)}
            summary["hours"] = sum(d["frames"] for d in done) * cfg.features.frame_shift_ms / 3.6e6
        else:
            summary |= {"source": cfg.phones.source, "form": cfg.phones.form, "num_classes": NUM_PHONES}
            summary["failed"] = sum(len(d["failed"]) for d in done)
        summary["quarantine"] = quarantined
        storage.write_json(storage.join(root, field, "summary.json"), summary)
        out[field] = summary
    return out


def run(cfg: PreprocessConfig) -> dict[str, Any]:
    if not cfg.shards:
        raise ValueError("preprocess.shards: no shard set given")
    indexes = {root: fmt.read_index(root) for root in cfg.shards}
    todo = [
        (root, s["name"], s["keys"])
        for root, index in indexes.items()
        for s in index["shards"]
        if cfg.overwrite or not is_done(root, s["name"], cfg.features, cfg.phones)
    ]
    total = sum(len(index["shards"]) for index in indexes.values())
    log.info("preprocess: %d of %d shards to do (%d already finished)", len(todo), total, total - len(todo))
    if todo:
        started = connect(cfg)
        metrics = PreprocessMetrics(cfg.metrics, len(todo))
        try:
            # A worker that dies (node lost, OOM kill) is retried; outputs are per-shard atomic, so that is safe.
            task = ray.remote(num_cpus=1, max_retries=3)(process_shard)
            pending = [task.remote(root, name, keys, cfg.features, cfg.phones) for root, name, keys in todo]
            with tqdm(total=len(pending), desc="preprocess", unit="shard") as bar:
                while pending:
                    finished, pending = ray.wait(pending, num_returns=1)
                    result = ray.get(finished[0])
                    metrics.shard(result)
                    bar.update(1)
                    bar.set_postfix(utts=result["processed"], quarantined=len(result["quarantined"]))
        finally:
            metrics.close()
            if started:
                ray.shutdown()
    fields = {
        root: _field_summaries(root, cfg, [s["name"] for s in index["shards"]])
        for root, index in indexes.items()
    }
    totals = {
        key: sum(f[FBANK][key] for f in fields.values()) for key in ("input", "processed", "quarantined")
    }
    totals["phones_failed"] = sum(f[cfg.phones.field]["failed"] for f in fields.values())
    totals["shards_processed"] = len(todo)
    totals["shards_skipped"] = total - len(todo)
    log.info("preprocess summary: %s", totals)
    return {
        "totals": totals,
        "fields": {root: {k: _brief(v) for k, v in f.items()} for root, f in fields.items()},
    }


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("quarantine", "features")}
