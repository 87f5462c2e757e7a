"""Scoring backends: cosine, and Kaldi's LDA + PLDA recipe trained on labelled speakers.

Every backend maps embeddings into a :class:`Space` in which the score of two utterances is
``a_i . a_j + c_i + c_j`` (cosine: unit vectors and c = 0; PLDA: its log-likelihood ratio, a quadratic form
that splits this way once the model is diagonalised). Trial scores and the cohort scores of score
normalisation (``normalise.py``) are then all the same bounded-memory products, whatever the backend.

Adding a backend is adding a class to ``BACKENDS``, constructed with the :class:`ScoreConfig` and the training
embeddings; its ``prepare`` sees the scored embeddings and returns the function that maps any embeddings
(scored ones, cohort) into its space.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..config import ScoreConfig
from .embeddings import Embeddings
from .plda import PldaScorer, encode_speakers, fit_lda, fit_plda

log = logging.getLogger(__name__)

# Trials scored per gather: bounds the [chunk, D] copies of enrollment and test rows (a 550k-trial list of
# 512-dim embeddings gathered at once would take over 4 GB; a chunk takes 2 x 64 MB).
_CHUNK = 1 << 14


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


@dataclass(frozen=True)
class Space:
    """Embeddings mapped so that ``score(i, j) = vectors[i] . vectors[j] + offsets[i] + offsets[j]``."""

    vectors: np.ndarray
    """float64 [N, K]."""
    offsets: np.ndarray
    """float64 [N]."""

    def pairs(self, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
        """Score of every pair ``(rows_a[i], rows_b[i])``."""
        return paired_dot(self.vectors, rows_a, rows_b) + self.offsets[rows_a] + self.offsets[rows_b]

    def against(self, rows: slice, other: Space) -> np.ndarray:
        """Scores [rows, len(other)] of some of these embeddings against every embedding of ``other``."""
        return self.vectors[rows] @ other.vectors.T + self.offsets[rows, None] + other.offsets[None, :]


Projector = Callable[[np.ndarray], Space]


class Backend(Protocol):
    def prepare(self, scored: np.ndarray) -> Projector:
        """Given the distinct embeddings the trials use (float64 [N, D]), the map of any embeddings into
        this backend's space."""
        ...

    def describe(self) -> dict[str, Any]:
        """Settings and training facts for the stage's summary."""
        ...


class CosineBackend:
    """Cosine similarity, optionally after subtracting the mean of the scored embeddings.

    The mean is over the distinct utterances the trials use, each counted once: it centres the evaluation
    data itself (removing a shift that every embedding of this data shares), and is not swayed by how many
    trials an utterance appears in or by unrelated utterances that happen to share the embeddings file.
    """

    def __init__(self, cfg: ScoreConfig, train: Embeddings | None = None) -> None:
        self.mean_subtraction = cfg.mean_subtraction

    def prepare(self, scored: np.ndarray) -> Projector:
        mean = scored.mean(axis=0) if self.mean_subtraction else np.zeros(scored.shape[1])

        def project(x: np.ndarray) -> Space:
            return Space(length_normalise(x - mean), np.zeros(len(x)))

        return project

    def describe(self) -> dict[str, Any]:
        return {"mean_subtraction": self.mean_subtraction}


def labelled(train: Embeddings | None, purpose: str) -> tuple[np.ndarray, np.ndarray]:
    """The training vectors (float64) and speakers of the utterances whose speaker is known."""
    if train is None:
        raise ValueError(f"{purpose} needs training embeddings (score.train_embeddings)")
    known = train.speakers != ""
    speakers = np.unique(train.speakers[known])
    if len(speakers) < 2:
        raise ValueError(
            f"{train.source}: {purpose} needs embeddings of at least 2 labelled speakers, found {len(speakers)} "
            "(embed a shard set whose utterances have speaker ids)"
        )
    return train.vectors[known].astype(np.float64), train.speakers[known]


class PldaBackend:
    """Kaldi's x-vector backend: subtract the training mean, LDA, length normalisation, two-covariance PLDA.

    Trained on the labelled utterances of the training embeddings; the LDA output dimension is capped at what
    the training data can estimate (embedding dimension, speakers - 1). Length normalisation scales each
    vector to norm sqrt(dim), the scale PLDA's unit within-speaker covariance expects.
    """

    def __init__(self, cfg: ScoreConfig, train: Embeddings | None = None) -> None:
        x, speakers = labelled(train, "the plda backend")
        labels, n_speakers = encode_speakers(speakers)
        self.mean = x.mean(axis=0)
        x = x - self.mean
        limit = min(x.shape[1], n_speakers - 1)
        self.lda_dim = min(cfg.lda_dim, limit) if cfg.lda_dim > 0 else 0
        if cfg.lda_dim > limit:
            log.warning("lda_dim %d capped at %d (dimension %d, %d speakers)", cfg.lda_dim, limit, x.shape[1],
                        n_speakers)  # fmt: skip
        self.lda = fit_lda(x, labels, n_speakers, self.lda_dim) if self.lda_dim else None
        model = fit_plda(self._reduce(x), labels, n_speakers, cfg.plda_iterations)
        self.scorer = PldaScorer.from_model(model)
        self.facts = {
            "lda_dim": self.lda_dim or x.shape[1],
            "plda_iterations": cfg.plda_iterations,
            "train_utterances": len(x),
            "train_speakers": n_speakers,
        }
        log.info("PLDA trained on %d utterances of %d speakers, dimension %d", len(x), n_speakers,
                 self.facts["lda_dim"])  # fmt: skip

    def _reduce(self, centred: np.ndarray) -> np.ndarray:
        z = centred @ self.lda if self.lda is not None else centred
        return length_normalise(z) * np.sqrt(z.shape[1])

    def prepare(self, scored: np.ndarray) -> Projector:
        def project(x: np.ndarray) -> Space:
            return Space(*self.scorer.project(self._reduce(x - self.mean)))

        return project

    def describe(self) -> dict[str, Any]:
        return self.facts


BACKENDS: dict[str, type] = {"cosine": CosineBackend, "plda": PldaBackend}


def make_backend(cfg: ScoreConfig, train: Embeddings | None = None) -> Backend:
    if cfg.backend not in BACKENDS:
        raise ValueError(f"unknown scoring backend {cfg.backend!r}; known: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[cfg.backend](cfg, train)
