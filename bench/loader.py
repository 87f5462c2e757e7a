"""Data supply: the training loader's batches per second against what the trainer consumes.

    python bench/loader.py --shards runs/bench/train [--batches 200] [--workers 0 1 2] [--rounds 3]

Supply is measured by draining the real WebDataset pipeline (resampled shards -> joined fields -> shuffle ->
decode/VAD/CMN -> pairs -> batches) with no model attached; demand is the median time of one training step of
the same config on fixed batches in this process, with one thread, as each rank runs when torchrun puts one
rank on a core (OMP_NUM_THREADS=1): supply per loader worker against demand per rank, core for core. Rounds
alternate demand and supply so drifting load on a shared machine hits both; the ratios are medians over rounds.
Target: supply >= 5x demand with the default workers (train.data.num_workers).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import save
from train import timed, torch_step

from sse_dist.config import DataConfig, ExperimentConfig, load
from sse_dist.shard.fields import describe
from sse_dist.train.data import build_loader


def supply(shards: list[str], cfg, workers: int, batches: int) -> float:
    cfg.data.num_workers = workers
    corpus = describe(shards, cfg.phones_field)
    loader = build_loader(
        corpus, cfg.data, cfg.phones_field, cfg.deepspeed.micro_batch, batches + 20, {}, seed=0
    )
    it = iter(loader)
    for _ in range(20):  # worker start-up and the shuffle buffer's first fill are not the steady state
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shards", nargs="+", required=True)
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load(ExperimentConfig, [args.config]).train
    step = torch_step(cfg)
    demand, rates = [], {w: [] for w in args.workers}
    for _ in range(args.rounds):
        demand.append(1.0 / timed(step, 20))
        for w in args.workers:
            rates[w].append(supply(args.shards, cfg, w, args.batches))
    rows = [
        {
            "workers": w,
            "batches_per_s": statistics.median(r),
            "supply_over_demand": statistics.median(x / d for x, d in zip(r, demand)),
            "rounds": r,
        }
        for w, r in rates.items()
    ]
    default = next((r for r in rows if r["workers"] == DataConfig().num_workers), None)
    save(
        "loader",
        {
            "config": args.config,
            "micro_batch": cfg.deepspeed.micro_batch,
            "frames_per_batch": cfg.deepspeed.micro_batch * (cfg.data.source_frames + cfg.data.target_frames),
            "trainer_threads": 1,
            "trainer_batches_per_s": statistics.median(demand),
            "trainer_rounds": demand,
            "supply": rows,
            "default_workers": DataConfig().num_workers,
            "target_met": bool(default and default["supply_over_demand"] >= 5),
        },
    )


if __name__ == "__main__":
    main()
