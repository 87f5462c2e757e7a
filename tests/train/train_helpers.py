"""Launching real training runs from tests (a plain module: importing from conftest is fragile)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config_helpers import write_config

REPO = Path(__file__).resolve().parents[2]


def config(tmp_path, shard_sets, tiny_model, **extra):
    cfg = {"train": {"shards": [shard_sets["train"]], "output": str(tmp_path / "run"), "log_every": 2}}
    return write_config(tmp_path / "exp.yaml", {**tiny_model, **extra}, cfg)


def launch(config, *args, nproc=2, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    """``launch/train.sh`` (torchrun) with ``nproc`` ranks; give a file as ``stdout`` for a long run, whose
    progress bars would fill a pipe nobody reads."""
    # The launcher runs `python` from PATH, as in an activated venv or a container.
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
    env = child_env(NPROC_PER_NODE=str(nproc), PATH=path)
    cmd = [str(REPO / "launch" / "train.sh"), "--config", config, *args]
    return subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, text=True)


# What a launcher sets for its ranks: the session's in-process group (conftest.world) has them in os.environ, and
# a training started as a child must not inherit them (its store would bind the session's port: EADDRINUSE).
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a training started as a child process: this one's, less the launcher variables."""
    return {**{k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}, **extra}
