"""Two torchrun agents (two "nodes", one rank each) meeting at a c10d rendezvous on loopback, started exactly as
``launch/train.sh`` starts each node of a cluster (``NNODES``, ``RDZV_ENDPOINT``): they train, checkpoint and
resume as one job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from config_helpers import write_config
from multinode_helpers import free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


def _agents(config: str, tmp_path: Path, *args: str) -> list[subprocess.Popen]:
    """One ``launch/train.sh`` per node, both pointed at the same rendezvous endpoint and job id."""
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "NNODES": "2", "NPROC_PER_NODE": "1"}
    env |= {"RDZV_ENDPOINT": f"127.0.0.1:{free_port()}", "RDZV_ID": uuid.uuid4().hex[:12]}
    cmd = [str(REPO / "launch" / "train.sh"), "--config", config, *args]
    procs = []
    for node in range(2):
        log = (tmp_path / f"agent{node}-{len(list(tmp_path.glob('agent*')))}.log").open("w")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True))
    return procs


def _wait(procs: list[subprocess.Popen], timeout: float = 300) -> None:
    try:
        for p in procs:
            p.wait(timeout=timeout)
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0]


def test_two_agents_rendezvous_train_checkpoint_and_resume(tmp_path, shard_sets, tiny_model):
    run = tmp_path / "run"
    base = {"train": {"shards": [shard_sets["train"]], "output": str(run), "log_every": 2}}
    config = write_config(tmp_path / "exp.yaml", {**tiny_model, "train.checkpoint_every": 4}, base)
    _wait(_agents(config, tmp_path, "--steps", "4"))
    first = json.loads((run / "summary.json").read_text())
    assert first["world_size"] == 2 and first["steps"] == 4
    assert (run / "checkpoints" / "latest").read_text().strip() == "step00000004"

    _wait(_agents(config, tmp_path, "--steps", "8", "--resume"))
    second = json.loads((run / "summary.json").read_text())
    assert second["world_size"] == 2 and second["steps"] == 8 and second["steps_this_run"] == 4
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history] == [2, 4, 6, 8]
    logs = "".join(p.read_text() for p in tmp_path.glob("agent*.log"))
    assert "at step 4" in logs
