"""A local Ray start that fails is retried a bounded number of times, then reported in one line naming the log."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

DRIVER = """
import logging, sys
from sse_dist.preprocess import ray_start
logging.basicConfig(level=logging.INFO)
ray_start.BACKOFF_S = 0.1
try:
    ray_start.start_local(1)
except RuntimeError as e:
    print("ERROR", e)
"""


def test_a_start_that_keeps_failing_is_one_line_naming_the_log(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # Ray's temporary folder cannot be created below a file: every start fails
    env = {**os.environ, "RAY_TMPDIR": str(blocker)}
    out = subprocess.run([sys.executable, "-c", DRIVER], env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in out.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, out.stdout + out.stderr[-3000:]
    assert "did not start in 3 attempts" in errors[0]
    assert f"read {blocker}/ray/session_latest/logs/raylet.out" in errors[0]
    assert out.stderr.count("Ray start-up failed (attempt") == 3
