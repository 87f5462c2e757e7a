"""``sse-dist train``: the DeepSpeed training loop, identical on one CPU process and on N nodes x G GPUs."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import deepspeed
import torch
from tqdm import tqdm

from .. import storage
from ..config import TrainConfig, dump_yaml
from ..metrics import TrainMetrics
from ..shard.verify import require_labels
from . import checkpoint, distributed, ds_config, history, lease
from .data import FBANK, SKIP_REASONS, Corpus, build_loader, describe, field_summary
from .model import PhoneClassifier, SpeakerEmbeddingModel

log = logging.getLogger(__name__)


def loss_weights(cfg: TrainConfig) -> dict[str, float]:
    return {
        "ssl": {"reconstruction": 1.0},
        "supervised": {"cross_entropy": 1.0},
        "multitask": {"cross_entropy": 1.0, "reconstruction": cfg.recon_weight},
        "semi": {"cross_entropy": 1.0, "reconstruction": cfg.recon_weight},
        "phones": {"phone_cross_entropy": 1.0},
    }[cfg.mode]


def speaker_index(cfg: TrainConfig, corpus: Corpus) -> dict[str, int]:
    """Class index of every speaker whose label the mode may use (only the listed ones where
    ``labelled_speakers`` is set: semi always, supervised and multitask optionally)."""
    if cfg.mode in ("ssl", "phones"):
        return {}
    speakers = corpus.speakers
    if cfg.mode == "supervised" and not cfg.labelled_speakers:
        require_labels(cfg.shards)
    if cfg.labelled_speakers:
        listed = set(storage.read_bytes(cfg.labelled_speakers).decode("utf-8").split())
        unknown = listed - set(speakers)
        if unknown:
            log.warning(
                "%d labelled speakers are not in the shards, e.g. %s", len(unknown), sorted(unknown)[:3]
            )
        speakers = [s for s in speakers if s in listed]
    if not speakers:
        raise ValueError(f"train.mode={cfg.mode} needs speaker labels, but the shards have none")
    return {s: i for i, s in enumerate(speakers)}


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices and kernels only: decaying biases and batch-norm scales just fights normalisation."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def build_model(cfg: TrainConfig, corpus: Corpus, num_speakers: int) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)
    if cfg.mode == "phones":
        return PhoneClassifier(cfg.model, corpus.feat_dim, corpus.num_phones)
    reconstruct = "reconstruction" in loss_weights(cfg)
    return SpeakerEmbeddingModel(cfg.model, corpus.feat_dim, corpus.num_phones, num_speakers, reconstruct)


def _write_run_files(cfg: TrainConfig, corpus: Corpus, ds: dict[str, Any], world: int) -> None:
    storage.write_bytes(storage.join(cfg.output, "train.yaml"), dump_yaml(cfg).encode("utf-8"))
    storage.write_json(storage.join(cfg.output, "ds_config.json"), ds)
    info = {"world_size": world, **{k: v for k, v in asdict(corpus).items() if k != "shards"}}
    storage.write_json(storage.join(cfg.output, "corpus.json"), {**info, "shards": len(corpus.shards)})


def _to_device(batch: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    out = {k: batch[k].to(device, non_blocking=True) for k in ("source", "target", "phones", "labels")}
    for k in ("source", "target", "phones"):
        out[k] = out[k].to(dtype)
    return out


def _export(cfg: TrainConfig, corpus: Corpus, model: torch.nn.Module, step: int) -> None:
    meta = {
        "model": asdict(cfg.model),
        "feat_dim": corpus.feat_dim,
        "data": {"vad": cfg.data.vad, "cmn_window": cfg.data.cmn_window},
        "features": field_summary(cfg.shards[0], FBANK)["features"],
        "step": step,
        "mode": cfg.mode,
    }
    url = storage.join(cfg.output, "model.pt")
    if cfg.mode != "phones":
        checkpoint.export(url, model.extractor, meta)
        return
    labels = field_summary(cfg.shards[0], cfg.phones_field)
    meta |= {"num_classes": corpus.num_phones, "labels": {k: labels[k] for k in ("field", "source", "form")}}
    checkpoint.export(url, model, meta, checkpoint.PHONE_EXPORT_FORMAT)


def run(cfg: TrainConfig) -> dict[str, Any]:
    world = distributed.init(cfg.deepspeed.backend, cfg.deepspeed.timeout_s)
    with lease.hold_run(cfg.output, world):  # one writer per run folder, taken before anything is written
        return _train(cfg, world)


def _train(cfg: TrainConfig, world: distributed.World) -> dict[str, Any]:
    weights = loss_weights(cfg)
    phones_field = cfg.phones_field if "reconstruction" in weights or cfg.mode == "phones" else ""
    corpus = describe(cfg.shards, phones_field)
    spk2idx = speaker_index(cfg, corpus)
    model = build_model(cfg, corpus, len(spk2idx))
    ds = ds_config.build(cfg, world.size)
    engine, _, _, _ = deepspeed.initialize(
        model=model, model_parameters=param_groups(model, cfg.optim.weight_decay), config=ds
    )
    checkpoint.secure(engine)
    store = checkpoint.Store.for_run(cfg.output, cfg.checkpoint_staging, world)
    step = checkpoint.resume(engine, store, cfg.output, asdict(cfg.model)) if cfg.resume else 0
    if world.rank == 0:
        _write_run_files(cfg, corpus, ds, world.size)
        log.info(
            "training %s on %d utterances (%.2f h), %d speakers labelled, %d ranks, from step %d",
            cfg.mode, corpus.utterances, corpus.hours, len(spk2idx), world.size, step,
        )  # fmt: skip
    ga = cfg.deepspeed.grad_accum
    # A resumed run draws a fresh data order rather than replaying the one it already trained on.
    loader = build_loader(
        corpus, cfg.data, phones_field, cfg.deepspeed.micro_batch, (cfg.steps - step) * ga, spk2idx,
        seed=cfg.seed + 7919 * step, chunks=cfg.mode == "phones",
    )  # fmt: skip
    metrics = TrainMetrics(cfg.metrics, world.rank, world.local_rank)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.deepspeed.precision]
    hist_url = storage.join(cfg.output, "history.jsonl")
    rows = history.read(hist_url) if cfg.resume and storage.exists(hist_url) else []
    rows = [r for r in rows if r["step"] <= step]
    skipped_total = dict.fromkeys(SKIP_REASONS, 0)
    window: dict[str, float] = {}
    window_n, window_samples, window_start = 0, 0, time.perf_counter()
    start_step, t_start = step, time.perf_counter()
    batches = iter(loader)
    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", disable=world.rank != 0)
    while step < cfg.steps:
        t0 = time.perf_counter()
        wait = 0.0
        for _ in range(ga):
            tw = time.perf_counter()
            batch = next(batches)
            wait += time.perf_counter() - tw
            for reason, n in batch["skipped"].items():
                skipped_total[reason] += n
            parts = engine(**_to_device(batch, world.device, dtype))
            loss = sum(w * parts[k] for k, w in weights.items())
            engine.backward(loss)
            engine.step()
            for k, v in parts.items():
                window[k] = window.get(k, 0.0) + float(v.detach())
            window_n += 1
        step += 1
        n_samples = cfg.deepspeed.micro_batch * ga
        window_samples += n_samples
        frames = n_samples * (
            cfg.data.source_frames + (cfg.data.target_frames if cfg.mode != "phones" else 0)
        )
        metrics.step(time.perf_counter() - t0, wait, n_samples, frames, batch["skipped"], step)
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            means = distributed.mean_across_ranks({k: v / window_n for k, v in window.items()}, world.device)
            rate = window_samples * world.size / (time.perf_counter() - window_start)
            lr = engine.get_lr()[0]
            metrics.log(means, lr, rate / world.size, rate / world.size * frames / n_samples)
            rows.append({"step": step, **means, "lr": lr, "samples_per_second": rate})
            bar.set_postfix({k[:5]: f"{v:.3f}" for k, v in means.items()})
            window, window_n, window_samples, window_start = {}, 0, 0, time.perf_counter()
            if world.rank == 0:
                history.write(hist_url, rows)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            tc = time.perf_counter()
            checkpoint.save(engine, store, step, cfg.keep_checkpoints)
            metrics.checkpoint_time.labels(**metrics.labels).observe(time.perf_counter() - tc)
    bar.close()
    skipped = dict(
        zip(SKIP_REASONS, distributed.sum_across_ranks(list(skipped_total.values()), world.device))
    )
    summary = {
        "mode": cfg.mode,
        "steps": step,
        "steps_this_run": step - start_step,
        "world_size": world.size,
        "samples": (step - start_step) * cfg.deepspeed.micro_batch * ga * world.size,
        "skipped_utterances": {k: int(v) for k, v in skipped.items()},
        "seconds": time.perf_counter() - t_start,
        "final": rows[-1] if rows else {},
    }
    if world.rank == 0:
        _export(cfg, corpus, engine.module, step)
        history.plot(storage.join(cfg.output, "loss.png"), rows, f"{cfg.mode} training, {world.size} rank(s)")
        storage.write_json(storage.join(cfg.output, "summary.json"), summary)
        log.info(
            "trained to step %d in %.1f s; skipped %s",
            step,
            summary["seconds"],
            summary["skipped_utterances"],
        )
    metrics.close()
    distributed.shutdown()
    return summary
