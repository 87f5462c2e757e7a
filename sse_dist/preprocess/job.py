"""``sse-dist preprocess``: a Ray job in two stages, each resumable per shard.

1. fbank: one Ray task per audio shard (log-mel + VAD); skipped where the features are already done.
2. the phone field ``preprocess.phones.field``: a pool of Ray actors (on GPUs when the source wants them and the
   cluster has them), each holding the phone source, labels the shards; the source may first ``prepare`` (the
   k-means source fits its units on a sample gathered by Ray tasks).

The driver joins the cluster named by config or ``RAY_ADDRESS`` (``ray job submit`` and KubeRay set it), or
starts a local one, so the same command runs on a laptop and on a cluster. Workers write their outputs straight
to storage and return only a small manifest, so nothing large passes through Ray's object store.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import ray
from tqdm import tqdm

from .. import storage
from ..config import PreprocessConfig, require_set
from ..metrics import PreprocessMetrics
from ..shard import format as fmt
from ..shard.fields import FBANK
from .phone_task import FAILED, PhoneLabeller, phone_fingerprint
from .phones import source_class
from .ray_start import start_local
from .shard_task import fbank_fingerprint, fbank_shard, is_done

log = logging.getLogger(__name__)
Shard = tuple[str, str]  # root, name: each task reads its shard's keys from the manifest, not the driver


def connect(cfg: PreprocessConfig) -> bool:
    """Join or start Ray; True if this call started a local cluster (which the caller then shuts down)."""
    if ray.is_initialized():
        return False
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS", "")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        return False
    start_local(cfg.num_cpus or None)
    return True


def _node() -> str:
    """The Ray node this task or actor runs on."""
    return ray.get_runtime_context().get_node_id()


def _fbank_on_node(root: str, name: str, features: Any) -> dict[str, Any]:
    return fbank_shard(root, name, None, features) | {
        "node": _node(),
        "url": fmt.shard_url(root, FBANK, name),
    }


class _NodeLabeller(PhoneLabeller):
    """The phone labeller, its results saying which node labelled the shard."""

    def label_shard(self, root: str, name: str, keys: list[str] | None = None) -> dict[str, Any]:
        url = fmt.shard_url(root, self.phones.field, name)
        return super().label_shard(root, name, keys) | {"node": _node(), "url": url}


def _progress(
    results: Iterator[dict[str, Any]], total: int, desc: str, metrics: PreprocessMetrics, nodes: dict
) -> None:
    """Drain a stage's results, noting which node did which shard (``nodes[node id][field] = [shard urls]``)."""
    metrics.remaining.inc(total)
    with tqdm(total=total, desc=desc, unit="shard") as bar:
        for result in results:
            metrics.shard(result)
            nodes.setdefault(result["node"], {}).setdefault(desc, []).append(result["url"])
            bar.update(1)
            bar.set_postfix(utts=result["processed"], quarantined=len(result["quarantined"]))


def _fbank_stage(cfg: PreprocessConfig, todo: list[Shard], metrics: PreprocessMetrics, nodes: dict) -> None:
    # A worker that dies (node lost, OOM kill) is retried; outputs are per-shard atomic, so that is safe.
    task = ray.remote(num_cpus=1, max_retries=3)(_fbank_on_node)
    pending = [task.remote(root, name, cfg.features) for root, name in todo]

    def finished() -> Iterator[dict[str, Any]]:
        nonlocal pending
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])

    _progress(finished(), len(todo), FBANK, metrics, nodes)


def _label(actors: list[Any], todo: list[Shard]) -> Iterator[dict[str, Any]]:
    """Each shard to the next free actor, results as they finish. An actor left with nothing to do is released
    at once: one whose node was lost restarts elsewhere (``max_restarts``) only where a CPU is free, and idle
    actors holding every CPU would leave its shard waiting forever."""
    queue, idle, pending = collections.deque(todo), list(actors), {}
    while queue or pending:
        while idle and queue:
            actor = idle.pop()
            pending[actor.label_shard.remote(*queue.popleft())] = actor
        for actor in idle:  # the queue is empty
            ray.kill(actor)
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        idle = [pending.pop(ref)]
        yield ray.get(ref)


def _phone_stage(
    cfg: PreprocessConfig, todo: list[Shard], fingerprint: str, metrics: PreprocessMetrics, nodes: dict
) -> None:
    resources = ray.cluster_resources()
    options: dict[str, Any] = {"num_cpus": 1, "max_restarts": 3, "max_task_retries": 3}
    slots = int(cfg.num_cpus or resources.get("CPU", 1))
    if source_class(cfg.phones.source).wants_gpu and resources.get("GPU", 0) >= 1:
        options["num_gpus"] = 1
        slots = int(resources["GPU"])
    actor = ray.remote(**options)(_NodeLabeller)
    actors = [
        actor.remote(cfg.phones, cfg.features, fingerprint) for _ in range(max(1, min(slots, len(todo))))
    ]
    _progress(_label(actors, todo), len(todo), cfg.phones.field, metrics, nodes)
    for a in actors:
        ray.kill(a)


def _common_summary(root: str, field: str, done: list[dict[str, Any]], hours: float) -> dict[str, Any]:
    quarantined = [q for d in done for q in d["quarantined"]]
    seconds = sum(d["seconds"] for d in done)
    tar_bytes = sum(storage.size(fmt.shard_url(root, field, d["shard"])) for d in done)
    return {
        "field": field,
        "shards": len(done),
        "input": sum(d["input"] for d in done),
        "processed": sum(d["processed"] for d in done),
        "quarantined": len(quarantined),
        "unexpected": sum(len(d["unexpected"]) for d in done),
        "hours": hours,
        # Every task and actor uses one core, so summed task time is core time.
        "core_seconds_per_audio_hour": seconds / hours if hours else None,
        "megabytes_per_audio_hour": tar_bytes / 1e6 / hours if hours else None,
        "quarantine": quarantined,
    }


def _fbank_summary(root: str, cfg: PreprocessConfig, names: list[str]) -> dict[str, Any]:
    done = [storage.read_json(fmt.done_url(root, FBANK, n)) for n in names]
    hours = sum(d["frames"] for d in done) * cfg.features.frame_shift_ms / 3.6e6
    summary = _common_summary(root, FBANK, done, hours)
    return summary | {"feat_dim": cfg.features.num_mel_bins, "features": asdict(cfg.features)}


def _phone_summary(root: str, cfg: PreprocessConfig, names: list[str]) -> dict[str, Any]:
    phones = cfg.phones
    done = [storage.read_json(fmt.done_url(root, phones.field, n)) for n in names]
    hours = sum(d["frames"] for d in done) * cfg.features.frame_shift_ms / 3.6e6
    outcomes: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    for d in done:
        outcomes.update(d["outcomes"])
        reasons.update(f["reason"].split(":")[0] for f in d["fallen_back"] + d[FAILED])
    summary = _common_summary(root, phones.field, done, hours) | {
        "source": phones.source,
        "form": phones.form,
        "num_classes": source_class(phones.source).num_classes(phones),
        "settings": asdict(phones),
        "outcomes": dict(outcomes),
        "reasons": dict(reasons),
        "failed": sum(len(d[FAILED]) for d in done),
    }
    if phones.reference:
        counts: collections.Counter[str] = collections.Counter()
        for d in done:
            counts.update({k: v for k, v in d["agreement"].items() if k != "reference"})
        summary["agreement"] = {"reference": phones.reference, **counts}
        for prefix in ("", "speech_", "phone_"):
            frames = counts[f"{prefix}frames"]
            summary["agreement"][f"{prefix}frame_accuracy"] = (
                counts[f"{prefix}agree"] / frames if frames else None
            )
    summary["failures"] = [f for d in done for f in d[FAILED]]
    return summary


def _check_reference(cfg: PreprocessConfig, roots: list[str]) -> None:
    for root in roots:
        if not storage.exists(storage.join(root, cfg.phones.reference, "summary.json")):
            raise ValueError(f"preprocess.phones.reference: no field {cfg.phones.reference!r} in {root}")


def run(cfg: PreprocessConfig) -> dict[str, Any]:
    require_set(cfg, "preprocess", "shards")
    indexes = {root: fmt.read_index(root) for root in cfg.shards}
    shards = [(root, s["name"]) for root, index in indexes.items() for s in index["shards"]]
    names = {root: [s["name"] for s in index["shards"]] for root, index in indexes.items()}
    if cfg.phones.reference:
        _check_reference(cfg, cfg.shards)
    started = False

    def ensure_ray() -> None:
        nonlocal started
        started = connect(cfg) or started

    counts: dict[str, dict[str, int]] = {}
    nodes: dict[str, dict[str, list[str]]] = {}
    metrics = PreprocessMetrics(cfg.metrics, 0)
    try:
        want = fbank_fingerprint(cfg.features)
        todo = [s for s in shards if FBANK in cfg.overwrite or not is_done(s[0], FBANK, s[1], want)]
        counts[FBANK] = {"processed": len(todo), "skipped": len(shards) - len(todo)}
        log.info("preprocess fbank: %d of %d shards to do", len(todo), len(shards))
        if todo:
            ensure_ray()
            _fbank_stage(cfg, todo, metrics, nodes)
        if cfg.phones.source:
            cls = source_class(cfg.phones.source)
            cls.prepare(cfg, ensure_ray)
            want = phone_fingerprint(cfg.phones, cfg.features, cls.identity(cfg.phones))
            redo = cfg.phones.field in cfg.overwrite
            todo = [s for s in shards if redo or not is_done(s[0], cfg.phones.field, s[1], want)]
            counts[cfg.phones.field] = {"processed": len(todo), "skipped": len(shards) - len(todo)}
            log.info("preprocess %s: %d of %d shards to do", cfg.phones.field, len(todo), len(shards))
            if todo:
                ensure_ray()
                _phone_stage(cfg, todo, want, metrics, nodes)
    finally:
        metrics.close()
        if started:
            ray.shutdown()
    return _summarise(cfg, names, counts) | {"nodes": nodes}


def _summarise(cfg: PreprocessConfig, names: dict[str, list[str]], counts: dict) -> dict[str, Any]:
    """Totals over every shard of each set (this run's and earlier runs'), written beside each field."""
    fields: dict[str, dict[str, Any]] = {}
    for root, shard_names in names.items():
        fields[root] = {FBANK: _fbank_summary(root, cfg, shard_names)}
        if cfg.phones.source:
            fields[root][cfg.phones.field] = _phone_summary(root, cfg, shard_names)
        for field, summary in fields[root].items():
            storage.write_json(storage.join(root, field, "summary.json"), summary)
    totals: dict[str, Any] = {
        key: sum(f[FBANK][key] for f in fields.values()) for key in ("input", "processed", "quarantined")
    }
    if cfg.phones.source:
        phone = [f[cfg.phones.field] for f in fields.values()]
        outcomes: collections.Counter[str] = collections.Counter()
        for p in phone:
            outcomes.update(p["outcomes"])
        totals["phones"] = {"field": cfg.phones.field, "outcomes": dict(outcomes)}
        totals["phones"]["failed"] = sum(p["failed"] for p in phone)
    totals["shards"] = counts
    log.info("preprocess summary: %s", totals)
    return {
        "totals": totals,
        "fields": {root: {k: _brief(v) for k, v in f.items()} for root, f in fields.items()},
    }


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("quarantine", "features", "failures", "settings")}
