"""``sse-dist train``: the DeepSpeed training loop, identical on one CPU process and on N nodes x G GPUs.

``run`` is set-up (the mode's task, the shard sets, the engine, the loader), then optimizer steps, each followed
by the logging window's and the checkpoint's turn when due, then the summary and the export. What differs
between modes is data in ``tasks.TASKS``; nothing here names a mode.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import deepspeed
import torch
from tqdm import tqdm

from .. import storage
from ..config import TrainConfig, dump_yaml
from ..metrics import TrainMetrics
from ..models.objectives import AAMHead, margin_at
from ..shard.fields import Corpus, describe
from . import card, checkpoint, distributed, ds_config, history, lease, pretrained
from .data import SKIP_REASONS, Batch, build_loader
from .tasks import TASKS, Task, export_meta, speaker_index

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices and kernels only: decaying biases and batch-norm scales just fights normalisation."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def build_model(cfg: TrainConfig, corpus: Corpus, num_speakers: int) -> torch.nn.Module:
    """The mode's model, initialised from ``cfg.seed``."""
    return TASKS[cfg.mode].model(cfg, corpus, num_speakers)


@dataclass
class Run:
    """What the steps share, built once by :func:`setup`."""

    cfg: TrainConfig
    task: Task
    world: distributed.World
    corpus: Corpus
    engine: Any
    store: checkpoint.Store
    batches: Iterator[Batch]
    metrics: TrainMetrics
    history_url: str
    rows: list[dict[str, Any]]
    """Logged windows, those of the run being resumed first."""
    step: int
    start_step: int
    origin: dict[str, Any] | None
    """What ``train.init_from`` loaded, and from where (None: random initialisation)."""
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    """Utterances this rank's loader could not use, by reason."""
    first_step: dict[str, float] = field(default_factory=dict)
    """When this run's first step ended (unix time) and the CPU seconds this rank had used by then: what
    starting costs, measured from the launch by whoever launched it."""

    @property
    def weights(self) -> dict[str, float]:
        return self.task.weights(self.cfg)


@dataclass
class Window:
    """Loss sums and samples since the last log line."""

    sums: dict[str, float] = field(default_factory=dict)
    micro_batches: int = 0
    samples: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, parts: dict[str, torch.Tensor]) -> None:
        for k, v in parts.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.detach())
        self.micro_batches += 1


def _write_run_files(cfg: TrainConfig, corpus: Corpus, ds: dict[str, Any], world: int) -> None:
    storage.write_bytes(storage.join(cfg.output, "train.yaml"), dump_yaml(cfg).encode("utf-8"))
    storage.write_json(storage.join(cfg.output, "ds_config.json"), ds)
    info = {"world_size": world, **{k: v for k, v in asdict(corpus).items() if k != "shards"}}
    storage.write_json(storage.join(cfg.output, "corpus.json"), {**info, "shards": len(corpus.shards)})


def setup(cfg: TrainConfig) -> Run:
    """Join the process group, build the mode's model in a DeepSpeed engine, resume, and open the loader."""
    world = distributed.init(cfg.deepspeed.backend, cfg.deepspeed.timeout_s)
    cfg = ds_config.keep_global_batch(cfg, world.size)
    task = TASKS[cfg.mode]
    phones_field = task.phones_field(cfg)
    corpus = describe(cfg.shards, phones_field)
    spk2idx = speaker_index(cfg, corpus)
    model = task.model(cfg, corpus, len(spk2idx))
    origin = pretrained.initialise(model, cfg.init_from) if cfg.init_from else None
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
        seed=cfg.seed + 7919 * step, chunks=task.segments == "chunks",
    )  # fmt: skip
    metrics = TrainMetrics(cfg.metrics, world.rank, world.local_rank)
    history_url = storage.join(cfg.output, "history.jsonl")
    rows = history.read(history_url) if cfg.resume and storage.exists(history_url) else []
    rows = [r for r in rows if r["step"] <= step]
    return Run(
        cfg, task, world, corpus, engine, store, iter(loader), metrics, history_url, rows,
        step, step, origin,
    )  # fmt: skip


def schedule_margin(cfg: TrainConfig, model: torch.nn.Module, step: int) -> None:
    """Set an AAM head's margin for the step about to be taken (its warm-up)."""
    head = getattr(model, "classifier", None)
    if isinstance(head, AAMHead):
        head.margin = margin_at(step, cfg.aam_margin, cfg.aam_warmup_steps)


def train_step(run: Run, window: Window) -> None:
    """One optimizer step: ``grad_accum`` micro-batches forward and backward (DeepSpeed steps the optimizer on
    the last); the skips of every micro-batch are counted, not only the last one's."""
    cfg, engine = run.cfg, run.engine
    weights, dtype = run.weights, DTYPES[cfg.deepspeed.precision]
    t0, wait = time.perf_counter(), 0.0
    skipped: collections.Counter[str] = collections.Counter()
    schedule_margin(cfg, engine.module, run.step)
    for _ in range(cfg.deepspeed.grad_accum):
        tw = time.perf_counter()
        batch = next(run.batches)
        wait += time.perf_counter() - tw
        skipped.update(batch.skipped)
        parts = engine(**batch.inputs(run.world.device, dtype))
        engine.backward(sum(w * parts[k] for k, w in weights.items()))
        engine.step()
        window.add(parts)
    run.step += 1
    run.skipped.update(skipped)
    samples = cfg.deepspeed.micro_batch * cfg.deepspeed.grad_accum
    window.samples += samples
    frames = samples * run.task.frames_per_sample(cfg.data)
    run.metrics.step(time.perf_counter() - t0, wait, samples, frames, dict(skipped), run.step)


def log_window(run: Run, window: Window, bar: tqdm) -> None:
    """Losses averaged over the window and the ranks, throughput; appended to the history (rank 0 writes it)."""
    world = run.world
    means = {k: v / window.micro_batches for k, v in window.sums.items()}
    means = distributed.mean_across_ranks(means, world.device)
    rate = window.samples * world.size / (time.perf_counter() - window.start)
    lr = run.engine.get_lr()[0]
    per_rank = rate / world.size
    run.metrics.log(means, lr, per_rank, per_rank * run.task.frames_per_sample(run.cfg.data))
    run.rows.append({"step": run.step, **means, "lr": lr, "samples_per_second": rate})
    bar.set_postfix({k[:5]: f"{v:.3f}" for k, v in means.items()})
    if world.rank == 0:
        history.write(run.history_url, run.rows)


def save_checkpoint(run: Run) -> None:
    t0 = time.perf_counter()
    checkpoint.save(run.engine, run.store, run.step, run.cfg.keep_checkpoints)
    run.metrics.checkpoint_time.labels(**run.metrics.labels).observe(time.perf_counter() - t0)


def finish(run: Run, seconds: float) -> dict[str, Any]:
    """The run's summary (skips summed over the ranks); rank 0 exports the model and writes the summary."""
    cfg, world = run.cfg, run.world
    totals = distributed.sum_across_ranks([run.skipped[k] for k in SKIP_REASONS], world.device)
    summary = {
        "mode": cfg.mode,
        "init_from": run.origin,
        "steps": run.step,
        "steps_this_run": run.step - run.start_step,
        "world_size": world.size,
        "samples": (run.step - run.start_step)
        * cfg.deepspeed.micro_batch
        * cfg.deepspeed.grad_accum
        * world.size,
        "skipped_utterances": {k: int(v) for k, v in zip(SKIP_REASONS, totals)},
        "seconds": seconds,
        "first_step": run.first_step,
        "final": run.rows[-1] if run.rows else {},
    }
    if world.rank == 0:
        meta = export_meta(cfg, run.corpus, run.step, run.origin)
        run.task.export(storage.join(cfg.output, "model.pt"), cfg, run.corpus, run.engine.module, meta)
        card.write(cfg, run.corpus, run.weights, run.step)
        history.plot(
            storage.join(cfg.output, "loss.png"), run.rows, f"{cfg.mode} training, {world.size} rank(s)"
        )
        storage.write_json(storage.join(cfg.output, "summary.json"), summary)
        log.info("trained to step %d in %.1f s; skipped %s", run.step, seconds, summary["skipped_utterances"])
    return summary


def run(cfg: TrainConfig) -> dict[str, Any]:
    world = distributed.init(
        cfg.deepspeed.backend, cfg.deepspeed.timeout_s
    )  # setup's own call is then a no-op
    with lease.hold_run(cfg.output, world):  # one writer per run folder, taken before anything is written
        return _train(cfg)


def _train(cfg: TrainConfig) -> dict[str, Any]:
    state = setup(cfg)
    t_start = time.perf_counter()
    window = Window()
    bar = tqdm(total=cfg.steps, initial=state.step, desc="train", unit="step", disable=state.world.rank != 0)
    while state.step < cfg.steps:
        train_step(state, window)
        state.first_step = state.first_step or {"at": time.time(), "cpu_s": time.process_time()}
        bar.update(1)
        if state.step % cfg.log_every == 0 or state.step == cfg.steps:
            log_window(state, window, bar)
            window = Window()
        if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
            save_checkpoint(state)
    bar.close()
    summary = finish(state, time.perf_counter() - t_start)
    state.metrics.close()
    distributed.shutdown()
    return summary
