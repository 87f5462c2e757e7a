import pytest

from sse_dist import storage
from sse_dist.config import ConfigError, DeepSpeedConfig, OptimConfig, TrainConfig
from sse_dist.train import ds_config


def test_generated_from_the_typed_config():
    cfg = TrainConfig(
        steps=500,
        optim=OptimConfig(lr=3e-4, warmup_steps=20, min_lr_ratio=0.1, betas=[0.8, 0.99]),
        deepspeed=DeepSpeedConfig(
            zero_stage=2, precision="bf16", micro_batch=16, grad_accum=4, grad_clip=1.0
        ),
    )
    ds = ds_config.build(cfg, world_size=8)
    assert ds["train_batch_size"] == 16 * 4 * 8
    assert ds["train_micro_batch_size_per_gpu"] == 16 and ds["gradient_accumulation_steps"] == 4
    assert ds["zero_optimization"] == {"stage": 2}
    assert ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]
    assert ds["gradient_clipping"] == 1.0
    assert ds["optimizer"]["params"]["lr"] == 3e-4 and ds["optimizer"]["params"]["betas"] == [0.8, 0.99]
    assert ds["optimizer"]["params"]["torch_adam"] is True
    sched = ds["scheduler"]
    assert sched["type"] == "WarmupCosineLR"
    assert sched["params"]["total_num_steps"] == 500 and sched["params"]["warmup_num_steps"] == 20
    assert sched["params"]["cos_min_ratio"] == 0.1


def test_constant_schedule_and_fused_adam():
    cfg = TrainConfig(optim=OptimConfig(schedule="constant"), deepspeed=DeepSpeedConfig(fused_adam=True))
    ds = ds_config.build(cfg, world_size=1)
    assert ds["scheduler"]["type"] == "WarmupLR"
    assert ds["scheduler"]["params"]["warmup_max_lr"] == cfg.optim.lr
    assert "torch_adam" not in ds["optimizer"]["params"]


def _resumed(tmp_path, world_size, micro_batch=8, grad_accum=1, saved_world=2):
    """A run whose ds_config.json was written by ``saved_world`` ranks, resumed on ``world_size``."""
    first = TrainConfig(output=str(tmp_path), deepspeed=DeepSpeedConfig(micro_batch=8, grad_accum=2))
    storage.write_json(str(tmp_path / "ds_config.json"), ds_config.build(first, saved_world))
    cfg = TrainConfig(
        output=str(tmp_path), resume=True,
        deepspeed=DeepSpeedConfig(micro_batch=micro_batch, grad_accum=grad_accum),
    )  # fmt: skip
    return ds_config.keep_global_batch(cfg, world_size)


def test_a_resume_on_fewer_or_more_ranks_keeps_the_global_batch(tmp_path):
    assert _resumed(tmp_path, 1).deepspeed.grad_accum == 4  # 8 x 2 x 2 ranks = 8 x 4 x 1 rank
    assert _resumed(tmp_path, 4).deepspeed.grad_accum == 1
    assert _resumed(tmp_path, 2).deepspeed.grad_accum == 1  # the same world: the config's batch
    assert _resumed(tmp_path, 1, micro_batch=16).deepspeed.grad_accum == 1  # a new micro batch: the config's
    fresh = TrainConfig(output=str(tmp_path / "new"), resume=True)
    assert ds_config.keep_global_batch(fresh, 3) is fresh  # nothing saved yet


def test_a_global_batch_the_new_world_cannot_split_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^deepspeed.grad_accum: the run's global batch 32 .* on 3 ranks"):
        _resumed(tmp_path, 3)
