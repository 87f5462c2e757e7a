"""Training step: DeepSpeed engine vs a plain PyTorch loop on the same model and batch; ZeRO stages; model sizes.

    python bench/train.py [--steps 20] [--rounds 7] [--configs configs/demo.yaml ...]

Part 1 (one process): median step time of the DeepSpeed engine and of a hand-written torch loop doing the same
work (AdamW, grad clipping, LR schedule), alternating rounds, on fixed batches — the engine's overhead. Part 2 (two
ranks under torchrun, gloo): step time and peak memory per rank for ZeRO stages 0, 1 and 2. Part 3: frames/s per core of
each model size in the given configs (demo, so762-ssl, the production-size xvector-large). One thread per
process throughout. Data loading is excluded here (see bench/loader.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from common import median_seconds, save

from sse_dist.config import ExperimentConfig, TrainConfig, load
from sse_dist.models.xvector import SpeakerEmbeddingModel
from sse_dist.train import ds_config
from sse_dist.train.data import Batch
from sse_dist.train.loop import param_groups
from sse_dist.train.tasks import TASKS

# On a GPU machine everything runs there, in the config's precision (bf16 autocast for the plain loop, the
# engine's own bf16 for DeepSpeed) and with fused Adam where the config asks for it; on a CPU, in fp32.
CUDA = torch.cuda.is_available()
DEVICE = torch.device("cuda" if CUDA else "cpu")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def batch(cfg: TrainConfig, num_phones: int = 40) -> Batch:
    b, d = cfg.deepspeed.micro_batch, 40
    g = torch.Generator().manual_seed(0)
    source = torch.randn(b, cfg.data.source_frames, d, generator=g)
    target = torch.randn(b, cfg.data.target_frames, d, generator=g)
    phones = torch.eye(num_phones)[torch.randint(0, num_phones, (b, cfg.data.target_frames), generator=g)]
    return Batch(source, phones, torch.randint(0, 50, (b,), generator=g), target, {})


def model_for(cfg: TrainConfig) -> SpeakerEmbeddingModel:
    torch.manual_seed(0)
    reconstruct = "reconstruction" in TASKS[cfg.mode].weights(cfg)
    return SpeakerEmbeddingModel(cfg.model, 40, 40, 50 if cfg.mode != "ssl" else 0, reconstruct)


def deepspeed_step(cfg: TrainConfig, world: int):
    import deepspeed

    from sse_dist.train import distributed

    distributed.init("nccl" if CUDA else "gloo")
    model = model_for(cfg)
    engine, *_ = deepspeed.initialize(
        model=model, model_parameters=param_groups(model, 0.01), config=ds_config.build(cfg, world)
    )
    data, weights = (
        batch(cfg).inputs(engine.device, DTYPES[cfg.deepspeed.precision]),
        TASKS[cfg.mode].weights(cfg),
    )

    def step() -> None:
        parts = engine(**data)
        loss = sum(w * parts[k] for k, w in weights.items())
        engine.backward(loss)
        engine.step()

    return step


def torch_step(cfg: TrainConfig):
    model = model_for(cfg).to(DEVICE)
    fused = CUDA and cfg.deepspeed.fused_adam
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=cfg.optim.lr, fused=fused or None)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(cfg.optim.warmup_steps, 1))
    )
    data, weights = batch(cfg).inputs(DEVICE, torch.float32), TASKS[cfg.mode].weights(cfg)
    bf16 = CUDA and cfg.deepspeed.precision == "bf16"

    def step() -> None:
        with torch.autocast(DEVICE.type, torch.bfloat16, enabled=bf16):
            parts = model(**data)
        loss = sum(w * parts[k] for k, w in weights.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.deepspeed.grad_clip)
        opt.step()
        sched.step()

    return step


def timed(step, steps: int) -> float:
    if CUDA:  # kernels run asynchronously: a step ends when the device is done

        def step(step=step) -> None:
            step()
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    return median_seconds(step, steps)


def engine_overhead(cfg: TrainConfig, steps: int, rounds: int) -> dict[str, float]:
    """Median step times of each, and the median of the per-round ratios: rounds alternate the two, so drifting
    load on a shared machine hits both alike and each ratio compares neighbours in time."""
    ds, pt = deepspeed_step(cfg, 1), torch_step(cfg)
    ds_t, pt_t = [], []
    for _ in range(rounds):
        ds_t.append(timed(ds, steps))
        pt_t.append(timed(pt, steps))
    return {
        "deepspeed_step_s": statistics.median(ds_t),
        "torch_step_s": statistics.median(pt_t),
        "ratio": statistics.median(d / t for d, t in zip(ds_t, pt_t)),
        "round_ratios": [d / t for d, t in zip(ds_t, pt_t)],
    }


def zero_worker(args: argparse.Namespace) -> None:
    """One rank of the ZeRO measurement (run under torchrun)."""
    cfg = load(ExperimentConfig, args.configs, [f"train.deepspeed.zero_stage={args.zero}"]).train
    step = deepspeed_step(cfg, int(os.environ["WORLD_SIZE"]))
    seconds = timed(step, args.steps)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "RESULT " + json.dumps({"rank": int(os.environ["RANK"]), "step_s": seconds, "peak_rss_mb": peak_mb})
    )


def zero_stages(args: argparse.Namespace) -> list[dict]:
    out = []
    for stage in (0, 1, 2):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__]
        cmd += ["--zero-worker", "--zero", str(stage), "--steps", str(args.steps), "--configs", *args.configs]
        text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        ranks = sorted(
            (json.loads(line[7:]) for line in text.splitlines() if line.startswith("RESULT ")),
            key=lambda r: r["rank"],
        )
        out.append(
            {
                "zero_stage": stage,
                "step_s": max(r["step_s"] for r in ranks),  # the slowest rank sets the pace
                "peak_rss_mb_per_rank": [r["peak_rss_mb"] for r in ranks],
            }
        )
    return out


def model_sizes(args: argparse.Namespace) -> list[dict]:
    """Training frames/s per core of each config's model, at most ``--size-batch`` pairs a step, so that a
    GPU-sized batch times in seconds on a CPU core (frames/s hardly depends on the batch once it fills it)."""
    out = []
    for path in args.sizes:
        cfg = load(ExperimentConfig, [path]).train
        cfg.deepspeed.micro_batch = min(cfg.deepspeed.micro_batch, args.size_batch)
        step = torch_step(cfg)
        seconds = timed(step, args.size_steps)
        frames = cfg.deepspeed.micro_batch * (cfg.data.source_frames + cfg.data.target_frames)
        params = sum(p.numel() for p in model_for(cfg).parameters())
        out.append(
            {
                "config": path,
                "params": params,
                "micro_batch": cfg.deepspeed.micro_batch,
                "step_s": seconds,
                "frames_per_s": frames / seconds,
            }
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=7, help="alternating rounds of engine vs plain loop")
    p.add_argument("--configs", nargs="+", default=["configs/demo.yaml"], help="the experiment measured")
    p.add_argument(
        "--sizes",
        nargs="*",
        default=["configs/demo.yaml", "configs/so762-ssl.yaml", "configs/xvector-large.yaml"],
        help="configs whose model sizes to time",
    )
    p.add_argument("--size-steps", type=int, default=8, help="timed steps per model size")
    p.add_argument("--size-batch", type=int, default=16, help="largest micro-batch timed per model size")
    p.add_argument("--zero-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--zero", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.zero_worker:
        return zero_worker(args)
    # One thread per process, as torchrun runs each of two ranks on this 2-core machine (OMP_NUM_THREADS=1):
    # per-core figures, and far less noise from the other jobs sharing the machine.
    torch.set_num_threads(1)
    cfg = load(ExperimentConfig, args.configs).train
    t0 = time.time()
    result = {
        "config": args.configs,
        "micro_batch": cfg.deepspeed.micro_batch,
        "threads": torch.get_num_threads(),
        "engine_vs_torch": engine_overhead(cfg, args.steps, args.rounds),
        "zero_stages_2_ranks": zero_stages(args),
        "model_sizes": model_sizes(args),
    }
    result["wall_s"] = time.time() - t0
    save("train", result)


if __name__ == "__main__":
    main()
