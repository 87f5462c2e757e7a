"""Preprocessing on Ray: throughput with 1 and 2 workers, the fixed per-job overhead, memory per worker, and
whether anything spills from an object store smaller than the corpus.

    python bench/preprocess.py [--shards ROOT] [--rounds 3]

The shard set (default: ../shared/data/so762-dev sharded into 10 shards, else a synthetic corpus) is
preprocessed from scratch with 1 and then 2 workers, in alternating rounds, each on a fresh local cluster whose
object store (100 MB) is smaller than the audio, so any spilling would show in Ray's memory summary. Scaling
is the median over rounds of the 1-worker over the 2-worker job time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

import psutil
import ray
from common import save

from shards import default_input
from sse_dist import storage
from sse_dist.config import PreprocessConfig, ShardConfig
from sse_dist.preprocess import run as preprocess
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard

OBJECT_STORE = 100 * 2**20


def worker_rss(stop: threading.Event, peak: dict[int, float]) -> None:
    """Peak resident memory of every Ray worker process, sampled every 0.2 s."""
    while not stop.is_set():
        for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            if "ray::" in cmd or "default_worker.py" in cmd:
                rss = proc.info["memory_info"].rss / 2**20
                peak[proc.info["pid"]] = max(peak.get(proc.info["pid"], 0.0), rss)
        stop.wait(0.2)


def one_run(root: str, workers: int) -> dict:
    for field in ("fbank", "phones"):
        storage.remove(storage.join(root, field), recursive=True)
    t_init = time.perf_counter()
    ray.init(num_cpus=workers, object_store_memory=OBJECT_STORE, include_dashboard=False)
    init_s = time.perf_counter() - t_init
    stop, peak = threading.Event(), {}
    sampler = threading.Thread(target=worker_rss, args=(stop, peak), daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    summary = preprocess(PreprocessConfig(shards=[root]))
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    from ray._private.internal_api import memory_summary

    mem = memory_summary(stats_only=True)
    ray.shutdown()
    hours = sum(s["seconds"] for s in fmt.read_index(root)["shards"]) / 3600
    # The tasks' own time, summed per field; what the job's wall time holds beyond it (spread over the workers)
    # is its fixed cost: scheduling, actor start-up, progress and summary writing.
    fields = summary["fields"][root]
    task_core_s = sum(f["core_seconds_per_audio_hour"] * f["hours"] for f in fields.values())
    # Ray prints "Spilled N MiB ..." lines only when something was spilled.
    store = [line.strip() for line in mem.splitlines() if line.startswith(("Plasma", "Spilled", "Restored"))]
    return {
        "workers": workers,
        "ray_init_s": init_s,
        "job_s": seconds,
        "audio_hours_per_s": hours / seconds,
        "task_core_s_per_audio_hour": {name: f["core_seconds_per_audio_hour"] for name, f in fields.items()},
        "fixed_overhead_s": seconds - task_core_s / workers,
        "utterances": summary["totals"]["processed"],
        "peak_rss_mb_per_worker": max(peak.values(), default=0.0),
        "object_store": store,
        "spilled": any(line.startswith("Spilled") for line in store),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shards", default=None, help="an existing shard set (its fields are deleted and redone)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    root = args.shards
    if root is None:
        root = os.path.join(tempfile.mkdtemp(), "set")
        shard(ShardConfig(input=default_input(), output=root, max_utts_per_shard=200))
    # Rounds alternate 1 and 2 workers so drifting load on the shared machine hits both alike.
    rounds = [[one_run(root, w) for w in (1, 2)] for _ in range(args.rounds)]
    save(
        "preprocess",
        {
            "shards": len(fmt.read_index(root)["shards"]),
            "object_store_mb": OBJECT_STORE / 2**20,
            "rounds": rounds,
            "scaling_2_over_1": statistics.median(one["job_s"] / two["job_s"] for one, two in rounds),
            "audio_hours_per_core_s": statistics.median(one["audio_hours_per_s"] for one, _ in rounds),
            "fixed_overhead_s": statistics.median(r["fixed_overhead_s"] for pair in rounds for r in pair),
            "ray_init_s": statistics.median(r["ray_init_s"] for pair in rounds for r in pair),
            "peak_rss_mb_per_worker": max(r["peak_rss_mb_per_worker"] for pair in rounds for r in pair),
            "spilled": any(r["spilled"] for pair in rounds for r in pair),
        },
    )


if __name__ == "__main__":
    main()
