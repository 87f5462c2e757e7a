"""``sse-dist demo``: every stage, for real, on the embedded synthetic corpus.

synth -> shard (train, test) -> preprocess (Ray) -> train (DeepSpeed under torchrun) -> embed -> score, then
a report comparing the SSL model with the same model untrained and with MFCC statistics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import storage
from .config import ConfigError, EmbedConfig, ExperimentConfig, ScoreConfig, dump_yaml

log = logging.getLogger(__name__)

PRESET = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
BASELINES = ("untrained", "mfcc_stats", "ssl")
_OWNED = ("corpus", "shards", "run", "embeddings", "scores", "experiment.yaml", "report.json")


def preset() -> str:
    if not PRESET.exists():
        raise ConfigError(f"demo: preset {PRESET} not found (run from a checkout, or pass --config)")
    return str(PRESET)


@contextlib.contextmanager
def _stage(name: str, seconds: dict[str, float], index: int, total: int) -> Iterator[None]:
    print(f"[demo {index}/{total}] {name} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - t0, 1)
    print(f"[demo {index}/{total}] {name} done in {seconds[name]:.1f} s", file=sys.stderr, flush=True)


def _train_under_torchrun(cfg: ExperimentConfig, config_file: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={cfg.demo.nproc}",
    ]
    cmd += ["-m", "sse_dist.cli", "train", "--config", config_file]
    log.info("launching: %s", " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    return storage.read_json(os.path.join(cfg.train.output, "summary.json"))


def _prepare(cfg: ExperimentConfig) -> tuple[ExperimentConfig, dict[str, str]]:
    w = os.path.abspath(cfg.demo.workdir)
    os.makedirs(w, exist_ok=True)
    for name in _OWNED:  # a rerun starts clean, touching only what the demo itself wrote
        path = Path(w, name)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    p = {k: os.path.join(w, *v) for k, v in {
        "corpus": ["corpus"], "train": ["shards", "train"], "test": ["shards", "test"], "run": ["run"],
        "emb": ["embeddings"], "scores": ["scores"], "config": ["experiment.yaml"], "report": ["report.json"],
    }.items()}  # fmt: skip
    cfg = dataclasses.replace(
        cfg,
        synth=dataclasses.replace(cfg.synth, output=p["corpus"]),
        preprocess=dataclasses.replace(cfg.preprocess, shards=[p["train"], p["test"]]),
        train=dataclasses.replace(cfg.train, shards=[p["train"]], output=p["run"], resume=False),
    )
    Path(p["config"]).write_text(dump_yaml(cfg))
    return cfg, p


def run(cfg: ExperimentConfig) -> dict[str, Any]:
    from .embed import run as embed
    from .preprocess import run as preprocess
    from .score import run as score
    from .shard import run as shard
    from .synth import run as synth

    cfg, p = _prepare(cfg)
    seconds: dict[str, float] = {}
    n = 6
    with _stage("synth", seconds, 1, n):
        corpus = synth(cfg.synth)
    with _stage("shard", seconds, 2, n):
        sharded = [
            shard(dataclasses.replace(cfg.shard, input=os.path.join(p["corpus"], split), output=p[split]))
            for split in ("train", "test")
        ]
    with _stage("preprocess", seconds, 3, n):
        prep = preprocess(cfg.preprocess)
    with _stage("train", seconds, 4, n):
        trained = _train_under_torchrun(cfg, p["config"])
    methods = {"untrained": ("random_init", ""), "mfcc_stats": ("mfcc_stats", ""), "ssl": ("model", p["run"])}
    with _stage("embed", seconds, 5, n):
        for name, (method, ckpt) in methods.items():
            out = os.path.join(p["emb"], f"{name}.npz")
            embed(EmbedConfig(method=method, checkpoint=ckpt, shards=[p["test"]], output=out), cfg.train)
    trials = os.path.join(p["corpus"], "test", "trials")
    with _stage("score", seconds, 6, n):
        scores = {
            name: score(
                ScoreConfig(
                    embeddings=os.path.join(p["emb"], f"{name}.npz"),
                    trials=trials,
                    output=os.path.join(p["scores"], f"{name}.json"),
                )
            )
            for name in methods
        }
    report = {
        "eer_percent": {k: round(v["eer_percent"], 2) for k, v in scores.items()},
        "min_dcf_0.01": {k: round(v["min_dcf_0.01"], 4) for k, v in scores.items()},
        "utterances": {
            "input": sum(s["summary"]["input"] for s in sharded),
            "sharded": sum(s["summary"]["sharded"] for s in sharded),
            "preprocessed": prep["totals"]["processed"],
            "quarantined": sum(s["summary"]["quarantined"] for s in sharded) + prep["totals"]["quarantined"],
        },
        "stage_seconds": seconds,
        "corpus": corpus,
        "training": {k: trained[k] for k in ("mode", "steps", "world_size", "samples", "seconds")},
        "trials": scores["ssl"]["trials"],
        "workdir": os.path.dirname(p["report"]),
    }
    storage.write_json(p["report"], report)
    print(table(report))
    return report


def table(report: dict[str, Any]) -> str:
    eer, dcf = report["eer_percent"], report["min_dcf_0.01"]
    lines = [f"{'embedding':<12} {'EER %':>7} {'minDCF(0.01)':>13}"]
    lines += [f"{k:<12} {eer[k]:>7.2f} {dcf[k]:>13.4f}" for k in BASELINES]
    u = report["utterances"]
    lines.append(
        f"utterances: input {u['input']}, sharded {u['sharded']}, preprocessed {u['preprocessed']}, "
        f"quarantined {u['quarantined']}"
    )
    lines.append("stage seconds: " + json.dumps(report["stage_seconds"]))
    return "\n".join(lines)
