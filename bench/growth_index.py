"""What opening a shard set costs at 10 million utterances (10,000 hours of ~3.6-s utterances): the version-1
index (every key, duration, speaker and sample rate in ``index.json``) against version 2 (counts in the index,
the lists in per-shard manifests), on generated indexes.

    python bench/growth_index.py [--utterances 1000000 10000000] [--per-shard 1000] [--work /tmp/index-scale]

Each figure is measured in a fresh process: wall time and added peak RSS of ``json.load`` of the v1 index and
of ``format.read_index`` + the ``describe`` sums of v2, and the v2 reads a task makes (one shard's manifest).
Results: ``bench/results/growth_index.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import save

ROOT = Path(__file__).resolve().parents[1]
READ = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
from sse_dist.shard import format as fmt
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if sys.argv[2] == "v1":
    with open(sys.argv[1] + "/index.json") as f:
        index = json.load(f)
    n = sum(len(s["keys"]) for s in index["shards"]); speakers = {x for s in index["shards"] for x in s["speakers"]}
else:
    index = fmt.read_index(sys.argv[1])
    n = sum(s["utterances"] for s in index["shards"]); speakers = set(index["speakers"])
t1 = time.perf_counter()
manifest = fmt.read_manifest(sys.argv[1], "000000") if sys.argv[2] == "v2" else None
t2 = time.perf_counter()
print(json.dumps({"open_s": t1 - t0, "utterances": n, "speakers": len(speakers), "manifest_s": t2 - t1,
  "added_peak_rss_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}))
"""


def generate(root: Path, utterances: int, per_shard: int, version: int) -> int:
    """An index of ``utterances`` in shards of ``per_shard``, 100 utterances a speaker; returns its bytes."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(exist_ok=True)
    shards = (utterances + per_shard - 1) // per_shard
    speakers = [f"spk{i:07d}" for i in range(utterances // 100 + 1)]
    with open(root / "index.json", "w") as f:
        f.write(json.dumps({"format": "sse-dist/shards", "version": version, "source": "generated"})[:-1])
        f.write(', "fields": ["audio"], "shards": [')
        for s in range(shards):
            first = s * per_shard
            n = min(per_shard, utterances - first)
            entry = {"name": f"{s:06d}", "utterances": n, "bytes": n * 120_000, "sha256": "0" * 64}
            entry["seconds"] = round(n * 3.6, 6)
            lists = {
                "keys": [f"spk{(first + i) // 100:07d}-utt{first + i:09d}" for i in range(n)],
                "durations": [3.6] * n,
                "speakers": [f"spk{(first + i) // 100:07d}" for i in range(n)],
                "sample_rates": [16000] * n,
            }
            if version == 1:
                entry |= lists
            elif s == 0:
                (root / "audio" / "000000.json").write_text(json.dumps({"shard": "000000", **lists}))
            f.write(("," if s else "") + json.dumps(entry))
        f.write('], "speakers": ' + json.dumps(speakers))
        summary = {"input": utterances, "sharded": utterances, "quarantined": 0}
        f.write(f', "summary": {json.dumps(summary)}, "quarantine": []}}')
    return (root / "index.json").stat().st_size


def measure(root: Path, version: str) -> dict:
    cmd = [sys.executable, "-c", READ, str(root), version, str(ROOT)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--utterances", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--per-shard", type=int, default=1000)
    p.add_argument("--work", type=Path, default=Path("/tmp/index-scale"))
    args = p.parse_args()
    rows = []
    for n in args.utterances:
        for version in (1, 2):
            root = args.work / f"v{version}-{n}"
            size = generate(root, n, args.per_shard, version)
            row = {"utterances": n, "version": version, "index_mb": round(size / 1e6, 2)}
            row |= {
                k: round(v, 3) if isinstance(v, float) else v for k, v in measure(root, f"v{version}").items()
            }
            print(row, flush=True)
            rows.append(row)
            (root / "index.json").unlink()
    save("growth_index", {"per_shard": args.per_shard, "rows": rows})


if __name__ == "__main__":
    main()
