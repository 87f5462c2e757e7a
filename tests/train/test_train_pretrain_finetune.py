"""Pretrain, then fine-tune, for real: two gloo ranks under torchrun train reconstruction + contrastive with
the ECAPA extractor and augmented sources; a supervised AAM run then starts from that run (init_from)."""

import json

import pytest
import torch
from train_helpers import config as _config
from train_helpers import launch as _launch

from sse_dist.models.export import load_export

pytestmark = pytest.mark.integration

ECAPA = {"train.model.arch": "ecapa", "train.model.res2net_scale": 4, "train.model.se_channels": 8,
         "train.model.attention_channels": 8}  # fmt: skip


def _train(config, *args):
    proc = _launch(config, *args)
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-4000:]
    return err


def test_contrastive_pretraining_then_aam_fine_tuning_from_it(tmp_path, shard_sets, tiny_model):
    pre = _config(tmp_path, shard_sets, tiny_model, **ECAPA, **{
        "train.mode": "ssl", "train.contrastive_weight": 0.5, "train.data.augment.narrowband.prob": 1.0,
        "train.data.augment.noise.prob": 0.5,
    })  # fmt: skip
    _train(pre, "--steps", "4", "--output", str(tmp_path / "pre"))
    history = [json.loads(x) for x in (tmp_path / "pre" / "history.jsonl").read_text().splitlines()]
    assert all(r["contrastive"] > 0 and r["reconstruction"] > 0 for r in history)
    source = load_export(str(tmp_path / "pre"))
    assert source["model"]["arch"] == "ecapa" and source["init_from"] is None

    fine = _config(tmp_path, shard_sets, tiny_model, **ECAPA, **{
        "train.mode": "supervised", "train.head": "aam", "train.aam_warmup_steps": 2,
    })  # fmt: skip
    err = _train(fine, "--steps", "2", "--init_from", str(tmp_path / "pre"), "--output", str(tmp_path / "ft"))
    assert "initialised extractor from" in err  # supervised: no decoder to take
    summary = json.loads((tmp_path / "ft" / "summary.json").read_text())
    origin = {"source": str(tmp_path / "pre"), "step": 4, "mode": "ssl", "loaded": ["extractor"]}
    assert summary["init_from"] == origin and summary["final"]["cross_entropy"] > 0
    tuned = load_export(str(tmp_path / "ft"))
    assert tuned["init_from"] == origin and tuned["mode"] == "supervised"
    # Two steps moved the extractor away from where it started.
    assert any(not torch.equal(tuned["state_dict"][k], v) for k, v in source["state_dict"].items()
               if v.is_floating_point())  # fmt: skip

    # A model of another width is refused before training starts, naming the layer.
    proc = _launch(fine, "--steps", "2", "--init_from", str(tmp_path / "pre"), "--model.channels", "64",
                   "--output", str(tmp_path / "bad"))  # fmt: skip
    _, err = proc.communicate(timeout=400)
    assert proc.returncode != 0 and "layer extractor.stem.0.weight has shape" in err
