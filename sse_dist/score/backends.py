"""Scoring backends: each turns embeddings and the trials' row indices into one score per trial.

Adding a backend (PLDA, score normalisation, ...) is adding a class constructed with the :class:`ScoreConfig`
to ``BACKENDS``; the constructor is where it reads its own settings or trains on its own data.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..config import ScoreConfig

# Trials scored per gather: bounds the [chunk, D] copies of enrollment and test rows (a 550k-trial list of
# 512-dim embeddings gathered at once would take over 4 GB; a chunk takes 2 x 64 MB).
_CHUNK = 1 << 14


class Backend(Protocol):
    """Called with embeddings [N, D] and the enrollment and test row of each trial (int [T]); returns float64
    scores [T], higher meaning more likely the same speaker."""

    def __call__(self, vectors: np.ndarray, enroll: np.ndarray, test: np.ndarray) -> np.ndarray: ...


def length_normalise(x: np.ndarray) -> np.ndarray:
    # einsum rather than np.linalg.norm(axis=1), which is many times slower on large matrices.
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    zero = np.count_nonzero(norms == 0)
    if zero:
        raise ValueError(f"{zero} scored embeddings have zero length; their cosine similarity is undefined")
    return x / norms


def paired_dot(x: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """``x[rows_a[i]] . x[rows_b[i]]`` for every i, in bounded-memory chunks."""
    out = np.empty(len(rows_a), dtype=np.float64)
    for start in range(0, len(rows_a), _CHUNK):
        part = slice(start, start + _CHUNK)
        out[part] = np.einsum("ij,ij->i", x[rows_a[part]], x[rows_b[part]])
    return out


class CosineBackend:
    """Cosine similarity, optionally after subtracting the mean of the scored embeddings.

    The mean is over the distinct utterances the trials use, each counted once: it centres the evaluation
    data itself (removing a shift that every embedding of this data shares), and is not swayed by how many
    trials an utterance appears in or by unrelated utterances that happen to share the embeddings file.
    """

    def __init__(self, cfg: ScoreConfig) -> None:
        self.mean_subtraction = cfg.mean_subtraction

    def __call__(self, vectors: np.ndarray, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        used, rows = np.unique(np.concatenate([enroll, test]), return_inverse=True)
        x = vectors[used].astype(np.float64)
        if self.mean_subtraction:
            x -= x.mean(axis=0)
        return paired_dot(length_normalise(x), rows[: len(enroll)], rows[len(enroll) :])


BACKENDS: dict[str, type] = {"cosine": CosineBackend}


def make_backend(name: str, cfg: ScoreConfig) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"unknown scoring backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](cfg)
