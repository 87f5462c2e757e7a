"""Data supply: the training loader's batches per second against what the trainer consumes.

    python bench/loader.py --shards runs/demo/shards/train [--batches 200] [--workers 0 1 2]

Supply is measured by draining the real WebDataset pipeline (resampled shards -> joined fields -> shuffle ->
decode/VAD/CMN -> pairs -> batches) with no model attached; demand is the median time of one training step of
the same config on fixed batches in this process. Target: supply >= 5x demand with the default workers.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import save
from train import timed, torch_step

from sse_dist.config import ExperimentConfig, load
from sse_dist.train.data import build_loader, describe


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
    args = p.parse_args()
    cfg = load(ExperimentConfig, [args.config]).train
    demand = 1.0 / timed(torch_step(cfg), 20)
    rows = []
    for w in args.workers:
        rate = supply(args.shards, cfg, w, args.batches)
        rows.append({"workers": w, "batches_per_s": rate, "supply_over_demand": rate / demand})
    save(
        "loader",
        {
            "config": args.config,
            "micro_batch": cfg.deepspeed.micro_batch,
            "torch_threads": torch.get_num_threads(),
            "trainer_batches_per_s": demand,
            "supply": rows,
        },
    )


if __name__ == "__main__":
    main()
