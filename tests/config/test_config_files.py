"""The committed experiment configs (``configs/``) load and validate, alone and as the overlays the docs stack."""

from pathlib import Path

import pytest

from sse_dist.config import ExperimentConfig, load

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_config_loads_and_validates(path):
    load(ExperimentConfig, [str(path)])


def test_overlays_stack_on_the_so762_recipe_and_change_only_their_fields():
    base = load(ExperimentConfig, [str(CONFIGS / "so762-ssl.yaml")]).train
    names = ["so762-ssl.yaml", "so762-multitask.yaml", "raw.yaml", "eq.yaml", "aam.yaml", "finetune.yaml"]
    t = load(ExperimentConfig, [str(CONFIGS / n) for n in names]).train
    assert (t.mode, t.head, t.recon_weight) == ("multitask", "aam", 1.0)
    assert t.data.cmn_window == -1 and t.model.input_norm and t.data.augment.eq.prob == 0.8
    assert t.optim.lr == base.optim.lr / 10 and t.optim.warmup_steps == base.optim.warmup_steps
    assert (t.steps, t.data.source_frames, t.model.channels) == (base.steps, base.data.source_frames, 256)
