"""Real DeepSpeed training: two gloo ranks under torchrun (through launch/train.sh), checkpoint and resume."""

import http.client
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from multinode_helpers import free_port as _free_port
from train_helpers import child_env
from train_helpers import config as _config
from train_helpers import launch as _launch

from sse_dist.models.export import load_export

pytestmark = pytest.mark.integration


def _scrape_until_done(proc, ports, timeout=300):
    """Poll every rank's exporter while training runs; the highest step counter each rank reported."""
    steps = dict.fromkeys(ports, 0.0)
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                    for line in r.read().decode().splitlines():
                        if line.startswith("sse_train_steps_total{"):
                            steps[port] = max(steps[port], float(line.rsplit(" ", 1)[1]))
            # Not listening yet; or, the port being in the ephemeral range, a socket connected to itself that
            # reads back its own request (http.client.BadStatusLine: "GET /metrics HTTP/1.1").
            except (OSError, http.client.HTTPException):
                pass
        time.sleep(0.2)
    out, err = proc.communicate(timeout=max(1, deadline - time.time()))
    assert proc.returncode == 0, err[-4000:]
    return steps, out


def test_two_ranks_train_checkpoint_resume_and_export(tmp_path, shard_sets, tiny_model):
    port = _free_port()
    config = _config(
        tmp_path,
        shard_sets,
        tiny_model,
        **{
            "train.mode": "multitask",
            "train.checkpoint_every": 4,
            "train.metrics.port": port,
            "train.metrics.final_scrape_s": 3,
        },
    )
    steps, _ = _scrape_until_done(_launch(config, "--steps", "8"), [port, port + 1])
    run = tmp_path / "run"
    first = json.loads((run / "summary.json").read_text())
    assert first["steps"] == 8 and first["world_size"] == 2
    assert first["samples"] == 8 * 8 * 2
    # Both ranks exported their step counter, and the exporters outlived the run by a final scrape's 3 s, so
    # the last poll read the final count however quickly the 8 steps went.
    assert steps == {port: 8.0, port + 1: 8.0}, steps
    ckpts = run / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == "step00000008"
    assert sorted(p.name for p in ckpts.glob("step*")) == ["step00000004", "step00000008"]

    proc = _launch(config, "--steps", "12", "--resume", "--metrics.port", "0")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-4000:]
    second = json.loads((run / "summary.json").read_text())
    assert second["steps"] == 12 and second["steps_this_run"] == 4
    assert "resumed from" in err and "at step 8" in err
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history] == [2, 4, 6, 8, 10, 12]
    assert all(r["reconstruction"] > 0 and r["cross_entropy"] > 0 for r in history)
    assert (run / "loss.png").stat().st_size > 1000

    blob = load_export(str(run))
    assert blob["step"] == 12 and blob["mode"] == "multitask" and blob["feat_dim"] == 40
    assert all(isinstance(v, torch.Tensor) for v in blob["state_dict"].values())
    assert not list(Path("/dev/shm").glob("deepspeed_allreduce_buffer*"))


def test_each_mode_trains_in_one_process(tmp_path, shard_sets, tiny_model):
    labelled = tmp_path / "labelled"
    index = json.loads((Path(shard_sets["train"]) / "index.json").read_text())
    labelled.write_text(index["speakers"][0] + "\n")
    for mode in ("ssl", "supervised", "semi"):
        config = _config(
            tmp_path, shard_sets, tiny_model, **{"train.mode": mode, "train.labelled_speakers": str(labelled)}
        )
        out = subprocess.run(
            [sys.executable, "-m", "sse_dist.cli", "train", "--config", config, "--steps", "2",
             "--output", str(tmp_path / mode)],
            capture_output=True, text=True, timeout=300, env=child_env(),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-4000:]
        final = json.loads((tmp_path / mode / "summary.json").read_text())["final"]
        assert ("reconstruction" in final) == (mode != "supervised")
        assert ("cross_entropy" in final) == (mode != "ssl")
