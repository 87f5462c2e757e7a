"""Checkpoints on a real (one-process, gloo) DeepSpeed engine: exact resume, safe loading, interrupted saves."""

import dataclasses
import pickle

import pytest
import torch

from sse_dist.config import TrainConfig
from sse_dist.train import checkpoint, ds_config

pytestmark = pytest.mark.integration


def _engine(zero_stage=1, precision="fp32"):
    import deepspeed

    cfg = TrainConfig(steps=20)
    cfg.optim.warmup_steps = 5  # the LR changes every step: a schedule restarted from 0 would show
    cfg.deepspeed.micro_batch = 4
    cfg.deepspeed.zero_stage = zero_stage
    cfg.deepspeed.precision = precision
    torch.manual_seed(0)
    # Batch norm puts buffers in the checkpoint (fp32 cases); in bf16 this toy model's running stats stayed fp32.
    norm = torch.nn.BatchNorm1d(8) if precision == "fp32" else torch.nn.LayerNorm(8)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), norm, torch.nn.Linear(8, 1))
    engine, *_ = deepspeed.initialize(
        model=model, model_parameters=model.parameters(), config=ds_config.build(cfg, 1)
    )
    checkpoint.secure(engine)
    return engine


def _train(engine, steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(4, 4, generator=gen).to(next(engine.module.parameters()).dtype)
        loss = engine(x).pow(2).mean().float()
        engine.backward(loss)
        engine.step()


def _optimizer_tensors(engine):
    tensors = [t for t in _flatten(engine.optimizer.state_dict()) if isinstance(t, torch.Tensor)]
    assert tensors
    return tensors


def _flatten(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _flatten(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _flatten(v)
    else:
        yield obj


# bf16 (the GPU setting) keeps fp32 master weights in DeepSpeed's own optimizer: other classes in its checkpoint.
@pytest.mark.parametrize(("zero_stage", "precision"), [(0, "fp32"), (1, "fp32"), (2, "bf16")])
def test_resume_restores_step_optimizer_and_schedule(world, tmp_path, zero_stage, precision):
    store = checkpoint.Store.for_run(str(tmp_path), "", world)
    first = _engine(zero_stage, precision)
    _train(first, 3)
    checkpoint.save(first, store, 3, keep=2)
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step00000003"

    second = _engine(zero_stage, precision)
    assert isinstance(second.checkpoint_engine, checkpoint.SafeCheckpointEngine)
    assert checkpoint.resume(second, store) == 3
    assert second.global_steps == first.global_steps == 3
    assert second.lr_scheduler.state_dict() == first.lr_scheduler.state_dict()
    assert second.get_lr() == first.get_lr()
    for a, b in zip(_optimizer_tensors(first), _optimizer_tensors(second), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(first.module.state_dict().values(), second.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # Both continue identically: the same parameters after two more identical steps.
    _train(first, 2, seed=5)
    _train(second, 2, seed=5)
    for a, b in zip(first.module.parameters(), second.module.parameters(), strict=True):
        assert torch.equal(a, b)


class _Payload:
    """What a crafted checkpoint could carry: unpickling it would run code (create a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_that_would_run_code_is_refused(world, tmp_path):
    store = checkpoint.Store.for_run(str(tmp_path), "", world)
    engine = _engine()
    _train(engine, 1)
    checkpoint.save(engine, store, 1, keep=1)
    states = tmp_path / "checkpoints" / "step00000001" / "mp_rank_00_model_states.pt"
    marker = tmp_path / "pwned"
    blob = torch.load(states, weights_only=True)
    torch.save({**blob, "evil": _Payload(str(marker))}, states)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        checkpoint.resume(_engine(), store)
    assert not marker.exists()


def test_interrupted_save_is_never_the_latest_and_is_pruned_later(world, tmp_path):
    store = checkpoint.Store.for_run(str(tmp_path), "", world)
    ckpts = tmp_path / "checkpoints"
    engine = _engine()
    _train(engine, 2)
    checkpoint.save(engine, store, 2, keep=1)
    _train(engine, 2)
    # The fault: the process dies after the model states were written, while the optimizer states are.
    real_save = engine.checkpoint_engine.save

    def dying_save(state_dict, path):
        if "optim_states" in path:
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 torn")
            raise OSError("injected: killed while writing " + path)
        real_save(state_dict, path)

    engine.checkpoint_engine.save = dying_save
    with pytest.raises(OSError, match="injected"):
        checkpoint.save(engine, store, 4, keep=1)
    assert (ckpts / "step00000004").is_dir()  # the partial save is there...
    assert (ckpts / "latest").read_text() == "step00000002"  # ...but never published

    resumed = _engine()
    assert checkpoint.resume(resumed, store) == 2
    _train(resumed, 1)
    checkpoint.save(resumed, store, 3, keep=1)
    # keep=1 keeps the new complete checkpoint, not the newer-named partial one of the dead run.
    assert sorted(p.name for p in ckpts.glob("step*")) == ["step00000003"]
    assert (ckpts / "latest").read_text() == "step00000003"
    assert not list(ckpts.glob(".tmp-*"))


@pytest.mark.parametrize(("zero_stage", "precision"), [(0, "fp32"), (1, "fp32"), (2, "bf16")])
def test_zero_partitions_of_another_world_size_are_refused_in_one_line(
    world, tmp_path, zero_stage, precision
):
    """What an elastic job that shrank meets: a ZeRO-1/2 checkpoint (one optimizer partition per rank, as
    DeepSpeed names them) cannot be loaded by another number of ranks; a ZeRO-0 one can."""
    store = checkpoint.Store.for_run(str(tmp_path), "", world)
    engine = _engine(zero_stage, precision)
    _train(engine, 1)
    checkpoint.save(engine, store, 1, keep=1)
    checkpoint.check_partitions(store, "step00000001")  # the world that saved it
    grown = checkpoint.Store(store.url, store.local, dataclasses.replace(world, size=2))
    if zero_stage == 0:
        checkpoint.check_partitions(grown, "step00000001")
        return
    with pytest.raises(
        ValueError, match=r"^deepspeed.zero_stage: .*partitions of 1 ranks .* for 2: resume on 1"
    ):
        checkpoint.check_partitions(grown, "step00000001")
