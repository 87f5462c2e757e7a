"""The DeepSpeed ``ds_config``, generated from the typed training config (never written by hand)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from .. import storage
from ..config import ConfigError, TrainConfig

log = logging.getLogger(__name__)


def scheduler(cfg: TrainConfig) -> dict[str, Any]:
    opt = cfg.optim
    warmup = max(opt.warmup_steps, 1)
    if opt.schedule == "constant":
        params = {"warmup_min_lr": 0.0, "warmup_max_lr": opt.lr, "warmup_num_steps": warmup}
        return {"type": "WarmupLR", "params": {**params, "warmup_type": "linear"}}
    return {
        "type": "WarmupCosineLR",
        "params": {
            "total_num_steps": cfg.steps,
            "warmup_num_steps": warmup,
            "warmup_min_ratio": 0.0,
            "cos_min_ratio": opt.min_lr_ratio,
            "warmup_type": "linear",
        },
    }


def build(cfg: TrainConfig, world_size: int) -> dict[str, Any]:
    ds = cfg.deepspeed
    optimizer: dict[str, Any] = {
        "type": "AdamW",
        "params": {"lr": cfg.optim.lr, "betas": list(cfg.optim.betas), "eps": 1e-8},
    }
    if not ds.fused_adam:
        # torch's AdamW: nothing to JIT-compile, and the right choice on CPU.
        optimizer["params"]["torch_adam"] = True
    return {
        "train_batch_size": ds.micro_batch * ds.grad_accum * world_size,
        "train_micro_batch_size_per_gpu": ds.micro_batch,
        "gradient_accumulation_steps": ds.grad_accum,
        "gradient_clipping": ds.grad_clip,
        "zero_optimization": {"stage": ds.zero_stage},
        "bf16": {"enabled": ds.precision == "bf16"},
        "fp16": {"enabled": ds.precision == "fp16", "initial_scale_power": 12},
        "optimizer": optimizer,
        "scheduler": scheduler(cfg),
        "steps_per_print": 10**9,  # sse-dist logs and exports metrics itself
        "wall_clock_breakdown": False,
    }


def keep_global_batch(cfg: TrainConfig, world_size: int) -> TrainConfig:
    """A resume on another number of ranks (an elastic job that lost or gained a node) keeps the run's global
    batch, ``micro_batch x grad_accum x ranks`` as its ``ds_config.json`` recorded it, by recomputing
    ``grad_accum``: each step then averages as many samples as before, so the step count and the LR schedule
    (both per step) mean what they did. A global batch that the new world cannot split is refused.

    The config's own batch is kept when the world size is the one the run last used, when the run has no
    ``ds_config.json`` yet, and when ``micro_batch`` changed (a deliberate new batch)."""
    url = storage.join(cfg.output, "ds_config.json")
    if not cfg.resume or not storage.exists(url):
        return cfg
    saved, ds = storage.read_json(url), cfg.deepspeed
    global_batch, micro = saved["train_batch_size"], saved["train_micro_batch_size_per_gpu"]
    ran_on = global_batch // (micro * saved["gradient_accumulation_steps"])
    if ran_on == world_size or micro != ds.micro_batch:
        return cfg
    if global_batch % (micro * world_size):
        raise ConfigError(
            f"deepspeed.grad_accum: the run's global batch {global_batch} (micro_batch {micro} x grad_accum "
            f"{saved['gradient_accumulation_steps']} x {ran_on} ranks) cannot be kept on {world_size} ranks: it is not "
            f"a multiple of micro_batch x ranks = {micro * world_size}; resume on a number of ranks that divides "
            f"{global_batch // micro}"
        )
    grad_accum = global_batch // (micro * world_size)
    log.warning(
        "resuming on %d ranks (the run last used %d): grad_accum %d -> %d keeps the global batch of %d",
        world_size, ran_on, ds.grad_accum, grad_accum, global_batch,
    )  # fmt: skip
    return replace(cfg, deepspeed=replace(ds, grad_accum=grad_accum))
