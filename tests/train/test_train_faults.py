"""Fault injection on a real two-rank run: SIGKILL one rank mid-training, then resume."""

import json
import os
import signal
import subprocess
import time

import psutil
import pytest
from train_helpers import config, launch

pytestmark = pytest.mark.integration


def _wait_for_checkpoint(proc, latest, step, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "training ended before the fault was injected"
        if latest.exists() and int(latest.read_text().strip()[4:]) >= step:
            return
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint of step >= {step} within {timeout} s")


def _rank_process(launcher, local_rank):
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("LOCAL_RANK") == str(local_rank) and "sse_dist.cli" in child.cmdline():
                return child
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no rank process with LOCAL_RANK={local_rank}")


def _lr_line(rows):
    """The learning rate is linear in the step during warm-up: every row must lie on one line."""
    (s0, lr0), (s1, lr1) = [(r["step"], r["lr"]) for r in rows[:2]]
    slope = (lr1 - lr0) / (s1 - s0)
    return [r["lr"] - (lr0 + slope * (r["step"] - s0)) for r in rows]


def test_killed_rank_fails_the_job_then_resume_continues(tmp_path, shard_sets, tiny_model):
    extra = {
        "train.mode": "ssl",
        "train.checkpoint_every": 4,
        "train.optim.schedule": "constant",
        "train.optim.warmup_steps": 10000,  # the LR rises every step: a schedule restarted at 0 would show
        "train.deepspeed.timeout_s": 60,
    }
    cfg = config(tmp_path, shard_sets, tiny_model, **extra)
    run = tmp_path / "run"
    with open(tmp_path / "first.log", "w") as log:
        proc = launch(cfg, "--steps", "10000", stdout=log, stderr=subprocess.STDOUT)
        _wait_for_checkpoint(proc, run / "checkpoints" / "latest", 8)
        victim = _rank_process(proc, 1)
        survivor = _rank_process(proc, 0)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        rc = proc.wait(timeout=120)
    # The job fails, promptly and as a whole: torchrun's agent tears the other rank down.
    assert rc != 0
    assert time.time() - killed_at < 60
    assert not survivor.is_running() or survivor.status() == psutil.STATUS_ZOMBIE
    first_rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]

    latest = (run / "checkpoints" / "latest").read_text().strip()
    step = int(latest[4:])
    files = sorted(p.name for p in (run / "checkpoints" / latest).iterdir())
    assert files == [
        "mp_rank_00_model_states.pt",
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]

    proc = launch(cfg, "--steps", str(step + 4), "--resume")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-4000:]
    assert f"at step {step}" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == step + 4 and summary["steps_this_run"] == 4
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(2, step + 5, 2))
    assert rows[: step // 2] == [r for r in first_rows if r["step"] <= step]
    # The resumed run's LR continues the first run's warm-up line (a restarted schedule would fall back).
    assert max(abs(d) for d in _lr_line(rows)) < 1e-12
    assert rows[-1]["lr"] > rows[step // 2 - 1]["lr"]
