from __future__ import annotations

import json

import numpy as np
import pytest
from score_helpers import all_trials, gaussian_speakers, write_npz

from sse_dist import storage
from sse_dist.config import ConfigError, ScoreConfig
from sse_dist.score import TrialsError, run
from sse_dist.score.metrics import eer


def write_inputs(root: str, kaldi_form: bool = False, **speaker_args) -> list[tuple[str, str, int]]:
    keys, vectors = gaussian_speakers(**speaker_args)
    write_npz(storage.join(root, "emb.npz"), keys=keys, embeddings=vectors)
    trials = all_trials(keys)
    if kaldi_form:
        lines = [f"{a} {b} {'target' if label else 'nontarget'}" for a, b, label in trials]
    else:
        lines = [f"{label} {a} {b}" for a, b, label in trials]
    storage.write_bytes(storage.join(root, "trials"), ("\n".join(lines) + "\n").encode())
    return trials


def config(root: str, **overrides) -> ScoreConfig:
    return ScoreConfig(
        embeddings=storage.join(root, "emb.npz"),
        trials=storage.join(root, "trials"),
        output=storage.join(root, "out", "result.json"),
        **overrides,
    )


@pytest.mark.parametrize("kaldi_form", [False, True])
def test_run_end_to_end(tmp_path, kaldi_form):
    root = str(tmp_path)
    # Offset: the embeddings share a shift, as real ones do, which mean subtraction takes out.
    trials = write_inputs(root, kaldi_form, offset=1.0)
    summary = run(config(root))

    assert json.loads((tmp_path / "out" / "result.json").read_text()) == summary
    n_targets = sum(label for *_, label in trials)
    assert summary == {
        "eer_percent": pytest.approx(0.0, abs=1.0),
        "min_dcf_0.01": pytest.approx(0.0, abs=0.1),
        "min_dcf_0.001": pytest.approx(0.0, abs=0.2),
        "p_target": 0.01,
        "trials": len(trials),
        "targets": n_targets,
        "nontargets": len(trials) - n_targets,
        "backend": "cosine",
        "mean_subtraction": True,
        "score_norm": "none",
        "duplicate_trials_dropped": 0,
    }
    assert (tmp_path / "out" / "result.det.png").read_bytes().startswith(b"\x89PNG")

    lines = (tmp_path / "out" / "result.scores").read_text().splitlines()
    assert len(lines) == len(trials)
    rows = [line.split() for line in lines]
    assert [(e, t) for e, t, *_ in rows] == [(a, b) for a, b, _ in trials]
    assert [w for *_, w in rows] == ["target" if label else "nontarget" for *_, label in trials]
    # The score file reproduces the reported EER.
    scores = np.array([float(s) for _, _, s, _ in rows])
    labels = np.array([label for *_, label in trials])
    assert 100 * eer(scores, labels) == pytest.approx(summary["eer_percent"], abs=1e-6)


def test_another_prior_is_reported_too_and_mean_subtraction_can_be_off(tmp_path):
    root = str(tmp_path)
    write_inputs(root)
    summary = run(config(root, p_target=0.05, mean_subtraction=False))
    assert list(summary)[:4] == ["eer_percent", "min_dcf_0.05", "min_dcf_0.01", "min_dcf_0.001"]
    assert summary["p_target"] == 0.05
    assert summary["mean_subtraction"] is False


def test_run_on_an_object_store_url():
    # fsspec's in-memory filesystem stands in for s3://: every read and write must go through storage.
    root = "memory://score-test"
    write_inputs(root, num_speakers=4, utts=3)
    summary = run(config(root))
    assert storage.read_json(f"{root}/out/result.json") == summary
    assert storage.exists(f"{root}/out/result.det.png")
    assert storage.exists(f"{root}/out/result.scores")
    storage.remove(root, recursive=True)


def test_unknown_utterance_fails_before_anything_is_written(tmp_path):
    root = str(tmp_path)
    write_inputs(root)
    with open(tmp_path / "trials", "a") as f:
        f.write("1 spk00-utt00 ghost\n")
    with pytest.raises(TrialsError, match="1 utterances .* have no embedding .*: ghost"):
        run(config(root))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("missing", ["embeddings", "trials", "output"])
def test_unset_paths_are_config_errors(missing):
    cfg = ScoreConfig(embeddings="e.npz", trials="t", output="o.json")
    setattr(cfg, missing, "")
    with pytest.raises(ConfigError, match=f"^{missing}: must be set"):
        run(cfg)


def test_plda_with_asnorm_end_to_end(tmp_path):
    root = str(tmp_path)
    trials = write_inputs(root, num_speakers=6, utts=4, spread=0.5, seed=1)
    # Training speakers (disjoint from the trials' speakers), labelled; two unlabelled utterances ride along.
    keys, vectors = gaussian_speakers(num_speakers=30, utts=6, spread=0.5, seed=2)
    speakers = np.array([f"train-{k.split('-')[0]}" for k in keys])
    speakers[:2] = ""
    write_npz(
        storage.join(root, "train.npz"),
        keys=np.char.add("train-", keys),
        embeddings=vectors,
        speakers=speakers,
    )
    summary = run(
        config(
            root,
            backend="plda",
            train_embeddings=storage.join(root, "train.npz"),
            lda_dim=16,
            score_norm="asnorm",
            cohort_size=20,
        )
    )
    assert summary["eer_percent"] < 5
    assert {k: summary[k] for k in list(summary)[-8:]} == {
        "nontargets": len(trials) - sum(label for *_, label in trials),
        "backend": "plda",
        "lda_dim": 16,
        "plda_iterations": 10,
        "train_utterances": 178,
        "train_speakers": 30,
        "score_norm": "asnorm",
        "cohort_size": 20,  # cohort: 30 speaker means and the 2 unlabelled utterances
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"backend": "plda"}, "train_embeddings: backend plda needs"),
        ({"score_norm": "asnorm"}, "cohort_embeddings: asnorm needs a cohort"),
    ],
)
def test_backends_without_their_training_data_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(ScoreConfig(embeddings="e.npz", trials="t", output="o.json", **overrides))
