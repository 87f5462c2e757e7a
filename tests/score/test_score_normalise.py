from __future__ import annotations

import numpy as np
import pytest

from sse_dist.config import ScoreConfig
from sse_dist.score import Embeddings, make_backend, normalise, score_trials
from sse_dist.score.normalise import speaker_means

COSINE = make_backend(ScoreConfig(mean_subtraction=False))
# Unit vectors, so cosine scores are plain dot products.
E1, E2, T = [1.0, 0.0], [0.6, 0.8], [0.0, 1.0]
COHORT = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]])


def test_asnorm_matches_a_hand_computed_case():
    # Cohort scores, top 2 of each side, mean and population std:
    #   E1: 1, .6, -1  -> {1, .6}  mean .8 std .2        E2: .6, 1, -.6 -> {1, .6}  mean .8 std .2
    #   T:  0, .8,  0  -> {.8, 0}  mean .4 std .4
    # (E1, T): raw 0   -> ((0 - .8) / .2 + (0 - .4) / .4) / 2 = (-4 - 1) / 2 = -2.5
    # (E1, E2): raw .6 -> ((.6 - .8) / .2 + (.6 - .8) / .2) / 2 = -1
    # (E2, T): raw .8  -> ((.8 - .8) / .2 + (.8 - .4) / .4) / 2 = .5
    vectors = np.array([E1, E2, T])
    enroll, test = np.array([0, 0, 1]), np.array([2, 1, 2])
    got = score_trials(COSINE, vectors, enroll, test, COHORT, top_n=2)
    np.testing.assert_allclose(got, [-2.5, -1.0, 0.5], atol=1e-12)
    # Without a cohort, the raw scores.
    np.testing.assert_allclose(score_trials(COSINE, vectors, enroll, test), [0.0, 0.6, 0.8], atol=1e-12)


def test_cohort_scores_in_chunks_match_one_matrix(monkeypatch):
    rng = np.random.default_rng(0)
    vectors, cohort = rng.standard_normal((30, 6)), rng.standard_normal((50, 6))
    enroll, test = rng.integers(0, 30, 80), rng.integers(0, 30, 80)
    whole = score_trials(COSINE, vectors, enroll, test, cohort, top_n=7)
    monkeypatch.setattr(normalise, "_CHUNK_SCORES", 120)  # 2 rows per chunk, a ragged last one
    np.testing.assert_allclose(
        score_trials(COSINE, vectors, enroll, test, cohort, top_n=7), whole, atol=1e-12
    )


def test_cohort_speaker_means_keep_unlabelled_utterances():
    cohort = Embeddings(
        np.array(["a1", "b1", "a2", "x"]),
        np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [5.0, 5.0]]),
        speakers=np.array(["a", "b", "a", ""]),
    )
    np.testing.assert_allclose(speaker_means(cohort), [[2.0, 0.0], [0.0, 2.0], [5.0, 5.0]])


def test_a_degenerate_cohort_is_an_error():
    vectors = np.array([E1, T])
    with pytest.raises(ValueError, match="AS-norm is undefined"):
        score_trials(COSINE, vectors, np.array([0]), np.array([1]), np.array([E1, E1]), top_n=2)
