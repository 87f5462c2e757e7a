"""Local Ray start-ups on a busy machine: the failure rate of a plain ``ray.init`` and of
``preprocess.ray_start.start_local`` (patient waits, bounded retries), under the same load.

    python bench/ray_start.py --starts 8 --burners 2                             # -> bench/results/ray_start.json
    python bench/ray_start.py --starts 5 --burners 6 --name ray_start-6burners

Each start is a fresh driver process that starts a 2-CPU local cluster, runs one task and shuts down, while
``--burners`` processes spin on the CPU beside it. The two variants alternate, so load drifts hit both alike.
The result also lists which addresses the cluster's processes listen on (``psutil``, the socket table).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import time

from common import save

DRIVER = """
import json, logging, sys, time, psutil, ray
from sse_dist.preprocess.ray_start import start_local
t = time.perf_counter()
try:
    if sys.argv[1] == "plain":
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    else:
        start_local(2)
    assert ray.get(ray.remote(lambda: 1).remote()) == 1
    seconds = time.perf_counter() - t
    listen = sorted({(p.name(), c.laddr.ip) for p in psutil.Process().children(recursive=True)
                     for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN})
    print(json.dumps({"ok": True, "seconds": seconds, "listen": listen}))
except Exception as e:
    print(json.dumps({"ok": False, "seconds": time.perf_counter() - t, "error": str(e).splitlines()[0][:200]}))
finally:
    ray.shutdown()
"""


def _burn() -> None:
    while True:
        pass


def _start(variant: str) -> dict:
    out = subprocess.run([sys.executable, "-c", DRIVER, variant], capture_output=True, text=True, timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return (
        json.loads(lines[-1]) if lines else {"ok": False, "error": out.stderr.strip().splitlines()[-1][:200]}
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--starts", type=int, default=10, help="starts per variant")
    p.add_argument("--burners", type=int, default=2, help="CPU-spinning processes beside the starts")
    p.add_argument("--name", default="ray_start", help="result file name in bench/results")
    args = p.parse_args()
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.burners)]
    for b in burners:
        b.start()
    runs: dict[str, list[dict]] = {"plain": [], "start_local": []}
    try:
        for i in range(args.starts):
            for variant, results in runs.items():
                results.append(_start(variant))
                print(variant, i, results[-1], flush=True)
    finally:
        for b in burners:
            b.kill()
    listen = next((r["listen"] for r in runs["start_local"] if r.get("ok")), [])
    result = {
        "starts": args.starts,
        "burners": args.burners,
        "failures": {v: sum(not r["ok"] for r in rs) for v, rs in runs.items()},
        "errors": {v: sorted({r["error"] for r in rs if not r["ok"]}) for v, rs in runs.items()},
        "seconds": {v: [round(r["seconds"], 1) for r in rs if "seconds" in r] for v, rs in runs.items()},
        "listening": listen,
        "finished": time.strftime("%H:%M:%S"),
    }
    save(args.name, result)


if __name__ == "__main__":
    main()
