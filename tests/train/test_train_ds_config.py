from sse_dist.config import DeepSpeedConfig, OptimConfig, TrainConfig
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
