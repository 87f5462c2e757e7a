"""The model card a training run writes, and what scoring adds to it."""

import json

import pytest

from sse_dist import storage
from sse_dist.train import card

pytestmark = pytest.mark.integration


def test_a_trained_run_has_a_card_with_its_data_training_code_and_dev_eer(trained_run, shard_sets):
    model_card = json.loads((trained_run / "model_card.json").read_text())
    index = storage.read_json(f"{shard_sets['train']}/index.json")
    assert model_card["data"]["utterances"] == index["summary"]["sharded"]
    assert model_card["data"]["hours"] == pytest.approx(index["summary"]["hours"], abs=1e-3)
    assert (model_card["mode"], model_card["objective"], model_card["steps"], model_card["seed"]) == (
        "ssl", "reconstruction", 6, 0,
    )  # fmt: skip
    assert model_card["commit"] == card.commit()
    scored = json.loads((trained_run.parent / "test.json").read_text())
    assert model_card["dev"]["eer_percent"] == scored["eer_percent"]
    markdown = (trained_run / "model_card.md").read_text()
    assert f"EER {scored['eer_percent']:.2f}%" in markdown and "6 steps" in markdown
