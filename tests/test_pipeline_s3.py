"""Every stage on an object store: shard -> preprocess (Ray) -> train (two DeepSpeed ranks) -> checkpoint ->
resume on a node that has nothing local -> embed -> score, all on ``s3://`` of a real S3 server on loopback;
the credentials, given through the environment, appear in nothing the run writes or prints."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from config_helpers import write_config
from s3_helpers import use_s3_endpoint

from sse_dist import storage
from sse_dist.config import EmbedConfig, PreprocessConfig, ScoreConfig, ShardConfig
from sse_dist.embed import run as embed
from sse_dist.preprocess import run as preprocess
from sse_dist.score import run as score
from sse_dist.shard import run as shard

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]
# Distinctive credentials (moto accepts any): found anywhere in the run's outputs or logs, they leaked.
KEY, SECRET = "AKIASSEDISTLEAKCHECK1", "sse-dist-secret-must-never-be-written-0123456789"
PRINTED: list[str] = []  # what the training launcher printed


def _train(config, staging, *args):
    """launch/train.sh with two ranks; the S3 endpoint and keys reach them through the environment only."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "NPROC_PER_NODE": "2"}
    cmd = [
        str(REPO / "launch" / "train.sh"),
        "--config",
        str(config),
        "--checkpoint_staging",
        str(staging),
        *args,
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr[-4000:]
    PRINTED.append(out.stdout + out.stderr)
    return out.stderr


def _assert_no_secret(bucket: str, local: Path, printed: list[str]) -> int:
    """Every object in the bucket, every file under ``local`` and everything printed; the files scanned."""
    blobs = [storage.read_bytes(f"{bucket}/{rel}") for rel in storage.files_below(bucket)]
    blobs += [p.read_bytes() for p in local.rglob("*") if p.is_file()]
    blobs += [text.encode() for text in printed]
    for blob in blobs:
        assert SECRET.encode() not in blob and KEY.encode() not in blob
    return len(blobs)


def test_every_stage_reads_and_writes_s3(
    corpus, s3_bucket, s3_server, tiny_model, tmp_path, monkeypatch, capfd
):
    use_s3_endpoint(monkeypatch, s3_server, KEY, SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    PRINTED.clear()
    sets = {split: f"{s3_bucket}/sets/{split}" for split in ("train", "test")}
    for split, root in sets.items():
        shard(ShardConfig(input=str(corpus / split), output=root, max_utts_per_shard=4))
    totals = preprocess(PreprocessConfig(shards=list(sets.values()), num_cpus=2))["totals"]
    assert totals["input"] == totals["processed"] > 0 and totals["quarantined"] == 0
    assert "000000.tar" in storage.listdir(f"{sets['train']}/fbank")

    run = f"{s3_bucket}/runs/ssl"
    config = write_config(
        tmp_path / "exp.yaml",
        {**tiny_model, "train.shards": [sets["train"]], "train.output": run, "train.log_every": 2,
         "train.checkpoint_every": 2, "train.keep_checkpoints": 2},
    )  # fmt: skip
    _train(config, tmp_path / "node-a", "--steps", "4")
    ckpts = f"{run}/checkpoints"
    assert storage.read_bytes(f"{ckpts}/latest").decode() == "step00000004"
    assert storage.listdir(ckpts) == ["latest", "step00000002", "step00000004"]
    assert storage.files_below(f"{ckpts}/step00000004") == [
        "mp_rank_00_model_states.pt",
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]

    # A pod restarted on another node: an empty staging folder, the checkpoint comes from the store.
    err = _train(config, tmp_path / "node-b", "--steps", "6", "--resume")
    assert "downloaded checkpoint step00000004" in err and "at step 4" in err
    summary = storage.read_json(f"{run}/summary.json")
    assert summary["steps"] == 6 and summary["steps_this_run"] == 2 and summary["world_size"] == 2
    assert storage.listdir(ckpts) == ["latest", "step00000004", "step00000006"]  # the oldest was pruned
    (staged,) = (tmp_path / "node-b").iterdir()
    local = sorted(p.name for p in staged.glob("step*"))
    assert local == ["step00000004", "step00000006"]  # pruned in the staging folder too
    history = [json.loads(line) for line in storage.read_bytes(f"{run}/history.jsonl").splitlines()]
    assert [r["step"] for r in history] == [2, 4, 6]

    emb = f"{s3_bucket}/embeddings/test.npz"
    embed(EmbedConfig(method="model", checkpoint=run, shards=[sets["test"]], output=emb))
    loaded = np.load(io.BytesIO(storage.read_bytes(emb)), allow_pickle=False)
    test_utts = storage.read_json(f"{sets['test']}/index.json")["summary"]["sharded"]
    assert loaded["embeddings"].shape == (test_utts, tiny_model["train.model.embed_dim"])
    trials = f"{s3_bucket}/trials/test"
    storage.write_bytes(trials, (corpus / "test" / "trials").read_bytes())
    report = f"{s3_bucket}/scores/test.json"
    score(ScoreConfig(embeddings=emb, trials=trials, output=report))
    assert 0 <= storage.read_json(report)["eer_percent"] <= 100
    assert storage.exists(f"{s3_bucket}/scores/test.det.png")

    out, err = capfd.readouterr()  # what the in-process stages (shard, preprocess, embed, score) printed
    assert _assert_no_secret(s3_bucket, tmp_path, [*PRINTED, out, err]) > 50
