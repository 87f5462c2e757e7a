"""Adaptive score normalisation (AS-norm; Matějka et al., Interspeech 2017, "AS-norm1"; wespeaker's recipe).

Each side of a trial is scored against a cohort of impostor embeddings; the mean and standard deviation of its
``top_n`` highest cohort scores describe how that utterance scores against the speakers most like it, and the
trial score is normalised by both sides' statistics:
``(s - mean_e) / std_e / 2 + (s - mean_t) / std_t / 2``.
"""

from __future__ import annotations

import numpy as np

from .backends import Space
from .embeddings import Embeddings
from .plda import class_means, encode_speakers

# Bounds the [rows, cohort] score matrix of one chunk (64 MB of float64).
_CHUNK_SCORES = 1 << 23


def speaker_means(cohort: Embeddings) -> np.ndarray:
    """The cohort's embeddings averaged per speaker (as wespeaker's cohort); utterances without a speaker
    label stay single entries."""
    known = cohort.speakers != ""
    vectors = cohort.vectors.astype(np.float64)
    if not known.any():
        return vectors
    labels, n = encode_speakers(cohort.speakers[known])
    return np.concatenate([class_means(vectors[known], labels, n)[0], vectors[~known]])


def top_stats(space: Space, cohort: Space, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation [N] of each embedding's ``top_n`` highest cohort scores."""
    n = len(space.offsets)
    mean, std = np.empty(n), np.empty(n)
    rows = max(1, _CHUNK_SCORES // max(len(cohort.offsets), 1))
    for start in range(0, n, rows):
        part = slice(start, min(start + rows, n))
        scores = space.against(part, cohort)
        top = np.partition(scores, scores.shape[1] - top_n, axis=1)[:, -top_n:]
        mean[part], std[part] = top.mean(axis=1), top.std(axis=1)
    return mean, std


def asnorm(
    raw: np.ndarray, enroll: np.ndarray, test: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """Normalise trial scores ``raw`` [T] with the cohort statistics of their enrollment and test rows."""
    if np.any(std[np.concatenate([enroll, test])] <= 0):
        raise ValueError(
            "an utterance's top cohort scores are all equal: AS-norm is undefined (cohort too small?)"
        )
    return 0.5 * ((raw - mean[enroll]) / std[enroll] + (raw - mean[test]) / std[test])
