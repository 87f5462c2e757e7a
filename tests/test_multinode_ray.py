"""A Ray cluster on one machine (a head and two worker nodes, each started by ``ray start``):
``sse-dist preprocess`` submits to it through ``RAY_ADDRESS``, its tasks run on both workers, and losing a worker
node's raylet mid-job loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from multinode_helpers import Node, free_port, ray_auth, ray_node

from sse_dist.config import ShardConfig
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard

pytestmark = pytest.mark.integration


@pytest.fixture
def ray_cluster(tmp_path):
    """``(driver env, workers)`` of a running cluster: a head with no CPUs (as KubeRay advises: it schedules,
    it does not work) and two worker nodes of one CPU each; ended after the test."""
    # Ray's socket paths must fit in 107 bytes: a short temp dir, not pytest's long one.
    tmp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    port, auth = free_port(), ray_auth()
    nodes = [ray_node(tmp / "ray", "head", "127.0.0.1", port, 0, auth)]
    try:
        nodes[0].find("raylet")
        # One at a time: Ray picks some ports itself, and two nodes starting together may pick the same one.
        for i in (2, 3):
            nodes.append(ray_node(tmp / "ray", f"worker{i}", f"127.0.0.{i}", port, 1, auth))
            raylet = nodes[-1].find("raylet")
            time.sleep(3)  # a raylet that cannot bind its ports dies within a second of starting
            assert raylet.is_running(), f"worker{i} did not start: {nodes[-1].tail()}"
        yield {"RAY_ADDRESS": f"127.0.0.1:{port}", **auth}, nodes[1:]
    finally:
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_for_done(root: Path, field: str, at_least: int, proc: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        done = len(list((root / field).glob("[0-9]*.json"))) if (root / field).exists() else 0
        if done >= at_least:
            return done
        time.sleep(0.1)
    raise AssertionError(f"{at_least} {field} shards not done in {timeout} s (job exit: {proc.poll()})")


@pytest.fixture
def many_shards(tmp_path):
    """96 one-utterance shards: enough phone work that the stage outlasts a labeller actor's start on an idle
    machine (with the suite's 20-utterance corpus the whole stage took 3 s there and the victim's labeller was
    never seen)."""
    from sse_dist.config import SynthConfig
    from sse_dist.synth import run as synth

    synth(SynthConfig(output=str(tmp_path / "corpus"), num_speakers=8, num_test_speakers=1, utts_per_speaker=12,
                      test_utts_per_speaker=2, min_duration=2.0, max_duration=2.5, workers=2, seed=3))  # fmt: skip
    root = tmp_path / "train"
    shard(ShardConfig(input=str(tmp_path / "corpus" / "train"), output=str(root), max_utts_per_shard=1))
    return root


def _first_labeller(nodes: list[Node], timeout: float = 120) -> tuple[Node, psutil.Process]:
    """The node whose phone labeller starts first, and that labeller's process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in nodes:
            if labeller := node.lookup("ray::_NodeLabeller"):
                return node, labeller
        time.sleep(0.05)
    raise AssertionError(f"no phone labeller started in {timeout} s")


def test_preprocess_runs_on_both_workers_and_loses_nothing_when_one_dies(ray_cluster, many_shards, tmp_path):
    driver_env, workers = ray_cluster
    root = many_shards
    names = [s["name"] for s in fmt.read_index(str(root))["shards"]]
    utterances = len(names)
    cmd = [sys.executable, "-m", "sse_dist.cli", "preprocess", "--set", f"preprocess.shards=[{root}]"]
    log = tmp_path / "job.log"
    with log.open("w") as err:
        job = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, **driver_env}
        )
    # Mid-job, on every machine: the labeller that starts first is frozen (SIGSTOP), so the other node's, once
    # started, is the only one working; when it has labelled two shards its raylet is killed, with the shard in
    # flight there and its labeller, and the frozen one resumes. (Unfrozen, on an idle machine one labeller
    # drained the queue while the other was still starting, and the kill came after the job.)
    survivor, frozen = _first_labeller(workers)
    frozen.suspend()
    victim = next(w for w in workers if w is not survivor)
    try:
        victim.find("ray::_NodeLabeller", timeout=120)
        done = len(list((root / "phones").glob("[0-9]*.json")))
        _wait_for_done(root, "phones", done + 2, job, timeout=60)
        victim.find("raylet").kill()
    finally:
        frozen.resume()
    try:
        out, _ = job.communicate(timeout=120)
    finally:
        job.kill()
        print(log.read_text()[-5000:])
    assert job.returncode == 0
    summary, _ = json.JSONDecoder().raw_decode(out[out.index("{\n") :])  # Ray may log after it
    # Both workers featurised, each shard is done exactly once by the node named for it, and nothing is lost.
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
    phones = [shards.get("phones", []) for shards in by_node.values()]
    assert min(len(urls) for urls in phones) >= 2, by_node  # the victim labelled two before it was lost
    assert sorted(Path(url).stem for urls in phones for url in urls) == names
