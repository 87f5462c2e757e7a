"""The threshold stored with a model: the EER operating point of a scored trial list, recorded in the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from score_helpers import all_trials, gaussian_speakers, write_npz

from sse_dist import storage
from sse_dist.config import ConfigError, ScoreConfig, TrainConfig
from sse_dist.score import run
from sse_dist.score.calibration import cosine, load
from sse_dist.score.metrics import det_curve, eer, eer_threshold
from sse_dist.shard.fields import Corpus
from sse_dist.train import card


def rates_at(threshold: float, scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    accepted = scores > threshold
    return float(np.mean(~accepted[labels == 1])), float(np.mean(accepted[labels == 0]))


def test_separated_scores_put_the_threshold_midway_between_the_classes():
    assert eer_threshold([0.9, 0.7, 0.2, 0.4], [1, 1, 0, 0]) == pytest.approx(0.55)


@pytest.mark.parametrize("seed", range(20))
def test_error_rates_at_the_threshold_bracket_the_eer(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    labels = np.r_[1, 0, rng.integers(0, 2, n)]
    scores = np.round(rng.standard_normal(len(labels)) + labels, 1)  # ties too
    threshold = eer_threshold(scores, labels)
    p_miss, p_fa = rates_at(threshold, scores, labels)
    # The threshold lies between the two operating points around the crossing; it realises one of them.
    assert min(p_miss, p_fa) - 1e-12 <= eer(scores, labels) <= max(p_miss, p_fa) + 1e-12
    p_misses, p_fas = det_curve(scores, labels)
    assert np.any(np.isclose(p_misses, p_miss) & np.isclose(p_fas, p_fa))


def write_run(folder, embed_dim: int = 24) -> str:
    cfg = TrainConfig(output=str(folder), shards=["shards/x"], seed=4)
    cfg.model.embed_dim = embed_dim
    corpus = Corpus([], ["a", "b"], 40, 0, 120, 0.25, {})
    card.write(cfg, corpus, {"reconstruction": 1.0}, step=10)
    return str(folder)


def scored(tmp_path, **overrides) -> ScoreConfig:
    keys, vectors = gaussian_speakers(offset=1.0, spread=0.8)
    write_npz(str(tmp_path / "emb.npz"), keys=keys, embeddings=vectors)
    lines = [f"{label} {a} {b}" for a, b, label in all_trials(keys)]
    (tmp_path / "trials").write_text("\n".join(lines) + "\n")
    return ScoreConfig(
        embeddings=str(tmp_path / "emb.npz"), trials=str(tmp_path / "trials"), output=str(tmp_path / "s.json"),
        **overrides,
    )  # fmt: skip


def test_scoring_with_a_run_records_its_threshold_and_eer(tmp_path):
    run_dir = write_run(tmp_path / "run")
    assert (
        card.read(run_dir)["dev"] is None
        and "Dev: not scored" in (tmp_path / "run" / "model_card.md").read_text()
    )
    summary = run(scored(tmp_path, run=run_dir))
    calibration = load(run_dir)
    assert summary["calibration"] == {"run": run_dir, "threshold": calibration["threshold"]}
    dev = card.read(run_dir)["dev"]
    assert dev["eer_percent"] == summary["eer_percent"] and dev["threshold"] == calibration["threshold"]
    assert f"EER {summary['eer_percent']:.2f}%" in (tmp_path / "run" / "model_card.md").read_text()
    assert f"dev EER {summary['eer_percent']:.2f}%" in card.describe(run_dir, card.read(run_dir))

    # Any pair scored with the calibration gets the trial list's score, so decisions match its error rates.
    keys, vectors = gaussian_speakers(offset=1.0, spread=0.8)
    rows = {k: v for k, v in zip(keys, vectors, strict=True)}
    lines = [line.split() for line in (tmp_path / "s.scores").read_text().splitlines()]
    scores = np.array([float(s) for _, _, s, _ in lines])
    labels = np.array([w == "target" for *_, w in lines], dtype=int)
    for a, b, s, _ in lines[:50]:
        assert cosine(calibration, rows[a], rows[b]) == pytest.approx(float(s), abs=1e-7)
    p_miss, p_fa = rates_at(calibration["threshold"], scores, labels)
    assert abs(p_miss - p_fa) < 0.02 and abs(p_miss - summary["eer_percent"] / 100) < 0.02


def test_a_run_is_calibrated_only_for_its_own_embeddings_and_cosine_scoring(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_card.json"):
        run(scored(tmp_path, run=str(tmp_path / "not-a-run")))
    with pytest.raises(ValueError, match="8-dim embeddings"):
        run(scored(tmp_path, run=write_run(tmp_path / "small", embed_dim=8)))
    assert not storage.exists(str(tmp_path / "small" / "calibration.json"))
    with pytest.raises(ConfigError, match="run: a threshold is recorded for cosine scoring"):
        scored(tmp_path, run="r", backend="plda", train_embeddings="t").validate()


def test_the_card_names_the_data_the_objective_and_the_code(tmp_path):
    run_dir = write_run(tmp_path / "run")
    model_card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert model_card["data"] == {"shards": ["shards/x"], "utterances": 120, "hours": 0.25, "speakers": 2,
                                  "labelled_speakers": 0}  # fmt: skip
    assert (model_card["mode"], model_card["objective"], model_card["steps"], model_card["seed"]) == (
        "ssl", "reconstruction", 10, 4,
    )  # fmt: skip
    assert model_card["commit"] == card.commit() != ""
    assert (
        card.objective({"cross_entropy": 1.0, "reconstruction": 0.5})
        == "cross_entropy + 0.5 x reconstruction"
    )
    assert card.describe(run_dir, None) == f"{run_dir} (no model card)"
