from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from sse_dist.config import ScoreConfig
from sse_dist.score import Embeddings, make_backend, score_trials
from sse_dist.score.metrics import eer
from sse_dist.score.plda import Plda, PldaScorer, encode_speakers, fit_lda, fit_plda


def speakers_with(
    between: np.ndarray, within: np.ndarray, n_speakers: int, utts: int, seed: int
) -> Embeddings:
    """Embeddings drawn from the two-covariance model itself: speaker ~ N(0, between), + N(0, within)."""
    rng = np.random.default_rng(seed)
    dim = len(between)
    means = rng.multivariate_normal(np.zeros(dim), between, n_speakers)
    x = np.repeat(means, utts, axis=0) + rng.multivariate_normal(np.zeros(dim), within, n_speakers * utts)
    speakers = np.repeat([f"s{seed}-{i:04d}" for i in range(n_speakers)], utts)
    keys = np.array([f"{s}-u{i}" for i, s in enumerate(speakers)])
    return Embeddings(keys, x.astype(np.float32), f"<seed {seed}>", speakers)


def all_pairs(n: int, utts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    enroll, test = np.triu_indices(n, k=1)
    return enroll, test, (enroll // utts == test // utts).astype(int)


def anisotropic(dim: int = 16, nuisance: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Speakers differ a little in every direction; the within-speaker variation (a channel) is large in a few
    directions and small elsewhere, so angles are dominated by the channel until PLDA whitens it away."""
    rng = np.random.default_rng(42)
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    scales = np.r_[np.full(nuisance, 3.0), np.full(dim - nuisance, 0.3)]
    return np.eye(dim), basis @ np.diag(scales**2) @ basis.T


def test_llr_is_the_gaussian_likelihood_ratio_of_the_model():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 4, 4))
    model = Plda(rng.standard_normal(4), a @ a.T + np.eye(4), b @ b.T + 0.5 * np.eye(4))
    x1, x2 = rng.standard_normal((2, 3, 4)) * 2
    total = model.between + model.within
    same = np.block([[total, model.between], [model.between, total]])
    diff = np.block([[total, np.zeros((4, 4))], [np.zeros((4, 4)), total]])
    mu = np.r_[model.mean, model.mean]
    stacked = np.c_[x1, x2]
    expected = multivariate_normal(mu, same).logpdf(stacked) - multivariate_normal(mu, diff).logpdf(stacked)
    a1, c1 = PldaScorer.from_model(model).project(x1)
    a2, c2 = PldaScorer.from_model(model).project(x2)
    np.testing.assert_allclose(np.einsum("ij,ij->i", a1, a2) + c1 + c2, expected, rtol=1e-6)


def test_em_recovers_the_generating_covariances():
    between, within = anisotropic(dim=6, nuisance=2)
    data = speakers_with(between, within, n_speakers=3000, utts=6, seed=1)
    labels, n = encode_speakers(data.speakers)
    model = fit_plda(data.vectors.astype(np.float64), labels, n, iterations=10)
    # Sampling error of a covariance from 3000 speakers is a few percent.
    np.testing.assert_allclose(model.between, between, atol=0.12)
    np.testing.assert_allclose(model.within, within, atol=0.12 * within.max())
    np.testing.assert_allclose(model.mean, 0.0, atol=0.1)


def test_lda_keeps_the_speaker_subspace_and_whitens_within():
    rng = np.random.default_rng(3)
    # Speakers differ only in the first 2 of 8 dimensions; LDA to 2 must find them.
    means = np.c_[3 * rng.standard_normal((40, 2)), np.zeros((40, 6))]
    labels = np.repeat(np.arange(40), 5)
    x = means[labels] + rng.standard_normal((200, 8)) * np.r_[0.5, 0.5, np.full(6, 4.0)]
    proj = fit_lda(x, labels, 40, 2)
    assert np.abs(proj[2:]).max() < 0.05 * np.abs(proj[:2]).max()
    z = x @ proj
    within = np.cov((z - np.array([z[labels == s].mean(0) for s in range(40)])[labels]).T, bias=True)
    np.testing.assert_allclose(within, np.eye(2), atol=1e-6)


def test_plda_separates_speakers_and_beats_cosine_on_anisotropic_within_speaker_noise():
    between, within = anisotropic()
    train = speakers_with(between, within, n_speakers=300, utts=8, seed=2)
    test = speakers_with(between, within, n_speakers=40, utts=4, seed=3)
    enroll, tst, labels = all_pairs(len(test), 4)
    errors = {}
    for backend in ("cosine", "plda"):
        cfg = ScoreConfig(backend=backend, lda_dim=12)
        scores = score_trials(make_backend(cfg, train), test.vectors, enroll, tst)
        errors[backend] = eer(scores, labels)
    assert errors["plda"] < 0.05
    assert errors["plda"] < errors["cosine"] / 3, errors


def test_lda_dim_is_capped_and_unlabelled_utterances_are_ignored():
    data = speakers_with(np.eye(8), 0.1 * np.eye(8), n_speakers=5, utts=4, seed=4)
    unlabelled = Embeddings(
        np.r_[data.keys, ["x1", "x2"]],
        np.r_[data.vectors, np.full((2, 8), 50.0, np.float32)],  # would wreck the mean if used
        speakers=np.r_[data.speakers, ["", ""]],
    )
    backend = make_backend(ScoreConfig(backend="plda", lda_dim=200), unlabelled)
    assert backend.describe() == {
        "lda_dim": 4,  # 5 speakers - 1
        "plda_iterations": 10,
        "train_utterances": 20,
        "train_speakers": 5,
    }
    assert make_backend(ScoreConfig(backend="plda", lda_dim=0), data).describe()["lda_dim"] == 8


def test_plda_without_labelled_speakers_is_a_clear_error():
    data = speakers_with(np.eye(3), np.eye(3), n_speakers=3, utts=2, seed=5)
    unknown = Embeddings(data.keys, data.vectors, "train.npz", np.full(len(data.keys), ""))
    with pytest.raises(
        ValueError, match="train.npz: the plda backend needs embeddings of at least 2 labelled"
    ):
        make_backend(ScoreConfig(backend="plda"), unknown)
    with pytest.raises(ValueError, match="needs training embeddings"):
        make_backend(ScoreConfig(backend="plda"), None)
