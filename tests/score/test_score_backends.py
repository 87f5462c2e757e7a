from __future__ import annotations

import numpy as np
import pytest
from score_helpers import gaussian_speakers

from sse_dist.config import ScoreConfig
from sse_dist.score import backends, score_trials
from sse_dist.score.backends import make_backend
from sse_dist.score.metrics import eer


def cosine(mean_subtraction: bool):
    backend = make_backend(ScoreConfig(mean_subtraction=mean_subtraction))
    return lambda vectors, enroll, test: score_trials(backend, vectors, enroll, test)


def random_trials(n_vectors: int, n_trials: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_vectors, n_trials), rng.integers(0, n_vectors, n_trials)


def test_cosine_matches_a_per_trial_reference_across_chunks(monkeypatch):
    monkeypatch.setattr(backends, "_CHUNK", 7)  # several chunks and a ragged last one
    vectors = np.random.default_rng(1).standard_normal((30, 5)).astype(np.float32)
    enroll, test = random_trials(30, 50)
    # Only rows that trials use enter the mean.
    used = np.unique(np.concatenate([enroll, test]))
    centred = vectors.astype(np.float64) - vectors[used].astype(np.float64).mean(axis=0)

    for mean_subtraction, x in [(False, vectors.astype(np.float64)), (True, centred)]:
        expected = [
            x[e] @ x[t] / np.linalg.norm(x[e]) / np.linalg.norm(x[t])
            for e, t in zip(enroll, test, strict=True)
        ]
        np.testing.assert_allclose(cosine(mean_subtraction)(vectors, enroll, test), expected, atol=1e-12)


def test_mean_subtraction_removes_a_shared_offset():
    # Every embedding shifted by one vector (as a biased extractor or a channel would): with mean subtraction
    # the scores are those of the unshifted data, whereas plain cosine now measures angles around a point
    # off the data's centre, which ranks the trials worse. Speakers overlap (spread 0.8) so ranking matters.
    keys, clean = gaussian_speakers(spread=0.8)
    shifted = clean + np.float32(2.0)
    enroll, test = np.triu_indices(len(keys), k=1)
    labels = (enroll // 5 == test // 5).astype(int)  # 5 utterances per speaker

    centred = cosine(True)(clean, enroll, test)
    np.testing.assert_allclose(cosine(True)(shifted, enroll, test), centred, atol=1e-5)
    assert eer(cosine(False)(shifted, enroll, test), labels) > 1.5 * eer(centred, labels) > 0


def test_mean_ignores_embeddings_no_trial_uses():
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((10, 4))
    enroll, test = random_trials(10, 40)
    with_outliers = np.concatenate([vectors, 100 + rng.standard_normal((5, 4))])
    np.testing.assert_allclose(
        cosine(True)(with_outliers, enroll, test), cosine(True)(vectors, enroll, test), atol=1e-12
    )


def test_mean_counts_each_utterance_once_however_many_trials_use_it():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # Row 0 appears in many trials; the mean is still (0, 1/3), not pulled towards row 0.
    enroll = np.array([0, 0, 0, 0, 1])
    test = np.array([1, 1, 1, 2, 2])
    centred = vectors - [0.0, 1 / 3]
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    np.testing.assert_allclose(cosine(True)(vectors, enroll, test), np.sum(unit[enroll] * unit[test], axis=1))


def test_zero_length_embedding_is_an_error():
    vectors = np.array([[1.0, 2.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="1 scored embeddings have zero length"):
        cosine(False)(vectors, np.array([0]), np.array([1]))
    # A single scored utterance is its own mean: nothing is left to score.
    with pytest.raises(ValueError, match="zero length"):
        cosine(True)(vectors, np.array([0]), np.array([0]))


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown scoring backend 'lda'; known: cosine, plda"):
        make_backend(ScoreConfig(backend="lda"))  # type: ignore[arg-type]
