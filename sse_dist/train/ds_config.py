"""The DeepSpeed ``ds_config``, generated from the typed training config (never written by hand)."""

from __future__ import annotations

from typing import Any

from ..config import TrainConfig


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
