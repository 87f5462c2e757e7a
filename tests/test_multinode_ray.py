"""A Ray cluster of two nodes on one machine (a head and a worker node, each started by ``ray start``):
``sse-dist preprocess`` submits to it through ``RAY_ADDRESS``, its tasks run on both nodes, and losing the worker
node's raylet mid-job loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from multinode_helpers import ray_node

from sse_dist.config import ShardConfig
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard

pytestmark = pytest.mark.integration


@pytest.fixture
def ray_cluster(tmp_path):
    """``(address, head, worker)`` of a running two-node cluster, one CPU each; ended after the test."""
    from multinode_helpers import free_port

    # Ray's socket paths must fit in 107 bytes: a short temp dir, not pytest's long one.
    tmp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    port = free_port()
    head = ray_node(tmp / "ray", "head", port, 1, head=True)
    nodes = [head]
    try:
        head.find("raylet")
        worker = ray_node(tmp / "ray", "worker", port, 1, head=False)
        nodes.append(worker)
        worker.find("raylet")
        yield f"127.0.0.1:{port}", head, worker
    finally:
        for node in reversed(nodes):
            node.stop()


def _wait_for_done(root: Path, field: str, at_least: int, proc: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        done = len(list((root / field).glob("[0-9]*.json"))) if (root / field).exists() else 0
        if done >= at_least:
            return done
        time.sleep(0.1)
    raise AssertionError(f"{at_least} {field} shards not done in {timeout} s (job exit: {proc.poll()})")


def test_preprocess_runs_on_both_nodes_and_loses_nothing_when_one_dies(ray_cluster, corpus, tmp_path):
    address, head, worker = ray_cluster
    root = tmp_path / "train"
    shard(ShardConfig(input=str(corpus / "train"), output=str(root), max_utts_per_shard=1))
    names = [s["name"] for s in fmt.read_index(str(root))["shards"]]
    utterances = len(names)
    cmd = [sys.executable, "-m", "sse_dist.cli", "preprocess", "--set", f"preprocess.shards=[{root}]"]
    job = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RAY_ADDRESS": address},
    )
    # Mid-job: a third of the shards done, the rest queued on or running at both nodes.
    _wait_for_done(root, "fbank", len(names) // 3, job, timeout=120)
    worker.find("raylet").kill()
    out, err = job.communicate(timeout=180)
    assert job.returncode == 0, err[-3000:]
    summary = json.loads(out[out.index("{") :])
    # Both nodes worked, each shard is done exactly once by the node named for it, and nothing is lost.
    by_node = summary["nodes"]
    assert len(by_node) == 2, by_node
    fbank = [Path(url).stem for shards in by_node.values() for url in shards.get("fbank", [])]
    assert sorted(fbank) == names
    totals = summary["totals"]
    assert totals["input"] == utterances == totals["processed"] + totals["quarantined"]
    assert totals["quarantined"] == 0
    for name in names:
        done = json.loads((root / "fbank" / f"{name}.json").read_text())
        assert done["processed"] == done["input"] == 1
    phones = [url for shards in by_node.values() for url in shards.get("phones", [])]
    assert len(phones) == len(names)
