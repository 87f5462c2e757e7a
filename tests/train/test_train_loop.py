"""The loop's pieces on a real one-process DeepSpeed engine and loader."""

import collections

import pytest

from sse_dist.config import DataConfig, DeepSpeedConfig, ModelConfig, TrainConfig
from sse_dist.train import loop
from sse_dist.train.data import SKIP_REASONS

pytestmark = pytest.mark.integration


@pytest.fixture
def run_state(world, tmp_path, shard_sets):
    """A set-up run (in the session's process group) with gradient accumulation, whose segments are too long
    for part of the tiny corpus."""
    cfg = TrainConfig(
        shards=[shard_sets["train"]], output=str(tmp_path / "run"), steps=4, mode="ssl",
        model=ModelConfig(channels=16, stats_channels=24, embed_dim=8, decoder_channels=16, decoder_layers=1),
        data=DataConfig(source_frames=150, target_frames=100, num_workers=0, shuffle_buffer=8),
        deepspeed=DeepSpeedConfig(micro_batch=2, grad_accum=3, backend="gloo", timeout_s=60),
    )  # fmt: skip
    state = loop.setup(cfg)
    yield state
    state.metrics.close()


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
    # The test tells the sum from the last micro-batch's tally only if earlier micro-batches skipped too (the
    # loader's order follows the run's seed, so the same micro-batches skip on every run).
    last_only = sum((collections.Counter(b) for b in per_batch[2::3]), collections.Counter())
    assert seen["too_short"] > last_only["too_short"], per_batch
    registry = run_state.metrics.registry
    counted = {
        r: registry.get_sample_value("sse_train_skipped_samples_total", {"rank": "0", "reason": r}) or 0
        for r in SKIP_REASONS
    }
    assert counted == {r: float(seen[r]) for r in SKIP_REASONS}
    assert run_state.skipped == seen  # the summary's tally
