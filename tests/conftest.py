"""Fixtures shared by the test packages: a real S3-compatible server on loopback."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import fsspec
import pytest
from s3_helpers import start_flaky_s3, use_s3_endpoint

# DeepSpeed JIT-builds its CPU shared-memory op on every process-group start and caches it in
# ~/.cache/torch_extensions, keyed by name only: environments at other paths (other clones, worktrees) sharing
# that cache rebuild it in turn and wait on each other's build lock (measured: 100-170 s per start). One cache
# per environment builds it once. Set here, it reaches every rank and Ray worker the tests start.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 (a real HTTP endpoint, so s3fs runs its whole stack); its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A fresh bucket on the moto server, as ``s3://name``; s3fs is pointed at it through the environment."""
    import s3fs

    use_s3_endpoint(monkeypatch, s3_server)
    bucket = f"sse-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("s3").mkdir(bucket)
    yield f"s3://{bucket}"
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def flaky_s3(s3_bucket, s3_server, monkeypatch):
    """s3fs pointed at a fault-injecting proxy (``s3_helpers.FlakyS3``) in front of the server; the proxy.
    botocore makes one attempt per call, so the injected faults reach s3fs's and our retry layers."""
    from sse_dist import storage

    server = start_flaky_s3(s3_server)
    use_s3_endpoint(monkeypatch, f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(storage, "BACKOFF_S", 0.01)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def tiny_model() -> dict:
    """Overrides that shrink the model and batches to what a test can train in seconds."""
    return {
        "train.model.channels": 32,
        "train.model.stats_channels": 48,
        "train.model.embed_dim": 24,
        "train.model.decoder_channels": 32,
        "train.model.decoder_layers": 2,
        "train.data.source_frames": 60,
        "train.data.target_frames": 40,
        "train.data.num_workers": 0,
        "train.deepspeed.micro_batch": 8,
    }


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A tiny synthetic corpus (Kaldi dirs ``train/`` and ``test/`` with a trial list), made once."""
    from sse_dist.config import SynthConfig
    from sse_dist.synth import run

    out = tmp_path_factory.mktemp("corpus")
    cfg = SynthConfig(
        output=str(out), num_speakers=8, num_test_speakers=3, utts_per_speaker=4, test_utts_per_speaker=3,
        min_duration=2.5, max_duration=3.5, workers=2, seed=1,
    )  # fmt: skip
    run(cfg)
    return out


@pytest.fixture(scope="session")
def shard_sets(corpus, tmp_path_factory):
    """The tiny corpus sharded (2 utterances per shard) and preprocessed on a local Ray cluster."""
    from sse_dist.config import PreprocessConfig, ShardConfig
    from sse_dist.preprocess import run as preprocess
    from sse_dist.shard import run as shard

    root = tmp_path_factory.mktemp("sets")
    sets = {}
    for split in ("train", "test"):
        sets[split] = str(root / split)
        shard(ShardConfig(input=str(corpus / split), output=sets[split], max_utts_per_shard=4))
    preprocess(PreprocessConfig(shards=list(sets.values()), num_cpus=2))
    return sets


@pytest.fixture(scope="session")
def trained_run(corpus, shard_sets, tiny_model, tmp_path_factory):
    """A tiny self-supervised run (6 steps, one process) as a user makes it: trained, its held-out speakers
    embedded (``test.npz`` beside the run) and their trials scored with ``score.run``, so the run carries a
    model card with a dev EER and a calibrated threshold. Its folder."""
    import subprocess

    from config_helpers import write_config

    from sse_dist.config import EmbedConfig, ScoreConfig
    from sse_dist.embed import run as embed
    from sse_dist.score import run as score

    root = tmp_path_factory.mktemp("trained")
    run = root / "run"
    base = {"train": {"shards": [shard_sets["train"]], "output": str(run), "log_every": 2}}
    config = write_config(root / "exp.yaml", tiny_model, base)
    cmd = [sys.executable, "-m", "sse_dist.cli", "train", "--config", config, "--steps", "6"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    embeddings = str(root / "test.npz")
    embed(EmbedConfig(method="model", checkpoint=str(run), shards=[shard_sets["test"]], output=embeddings))
    trials = str(corpus / "test" / "trials")
    score(ScoreConfig(embeddings=embeddings, trials=trials, output=str(root / "test.json"), run=str(run)))
    return run
