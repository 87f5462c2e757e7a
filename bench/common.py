"""Shared pieces of the benchmarks: the machine they ran on, medians of repeated timings, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _shared() -> Path:
    """The real speech the benchmarks prefer: $DATA, else the nearest ``shared/data`` above the checkout (a
    worktree may sit a level deeper than a clone)."""
    if os.environ.get("DATA"):
        return Path(os.environ["DATA"])
    here = Path(__file__).resolve()
    found = (p / "shared" / "data" for p in here.parents[2:])
    return next((p for p in found if p.is_dir()), here.parents[2] / "shared" / "data")


SHARED = _shared()


def machine() -> dict[str, Any]:
    import torch

    return {
        "date": date.today().isoformat(),
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # The machine is shared: its 1/5/15-minute load averages say how contended the timings were.
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return path
