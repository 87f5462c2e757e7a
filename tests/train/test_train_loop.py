"""The loop's pieces on a real one-process DeepSpeed engine and loader."""

import collections
import os

import pytest
import torch.distributed as dist

from sse_dist.config import DataConfig, DeepSpeedConfig, ModelConfig, TrainConfig
from sse_dist.train import loop
from sse_dist.train.data import SKIP_REASONS

pytestmark = pytest.mark.integration

_LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def run_state(tmp_path, shard_sets):
    """A set-up run with gradient accumulation whose segments are too long for part of the tiny corpus; the
    process group is destroyed and the launcher variables are restored afterwards."""
    saved = {k: os.environ.get(k) for k in _LAUNCHER_VARS}
    cfg = TrainConfig(
        shards=[shard_sets["train"]], output=str(tmp_path / "run"), steps=4, mode="ssl",
        model=ModelConfig(channels=16, stats_channels=24, embed_dim=8, decoder_channels=16, decoder_layers=1),
        data=DataConfig(source_frames=150, target_frames=100, num_workers=0, shuffle_buffer=8),
        deepspeed=DeepSpeedConfig(micro_batch=2, grad_accum=3, backend="gloo", timeout_s=60),
    )  # fmt: skip
    state = loop.setup(cfg)
    yield state
    state.metrics.close()
    dist.destroy_process_group()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_skips_of_every_accumulated_micro_batch_reach_the_metrics(run_state):
    per_batch = []

    def tally(batches):
        for batch in batches:
            per_batch.append(dict(batch.skipped))
            yield batch

    run_state.batches = tally(run_state.batches)
    window = loop.Window()
    for _ in range(3):
        loop.train_step(run_state, window)
    assert len(per_batch) == 9 and window.micro_batches == 9 and window.samples == 3 * 2 * 3
    seen = sum((collections.Counter(b) for b in per_batch), collections.Counter())
    # The test tells the sum from the last micro-batch's tally only if earlier micro-batches skipped too.
    last_only = sum((collections.Counter(b) for b in per_batch[2::3]), collections.Counter())
    assert seen["too_short"] > last_only["too_short"], per_batch
    registry = run_state.metrics.registry
    counted = {
        r: registry.get_sample_value("sse_train_skipped_samples_total", {"rank": "0", "reason": r}) or 0
        for r in SKIP_REASONS
    }
    assert counted == {r: float(seen[r]) for r in SKIP_REASONS}
    assert run_state.skipped == seen  # the summary's tally
