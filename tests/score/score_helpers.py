"""Synthetic data for the score tests: Gaussian speakers, whose utterances cluster around a speaker mean."""

from __future__ import annotations

import io
import itertools

import numpy as np

from sse_dist import storage


def gaussian_speakers(
    num_speakers: int = 12,
    utts: int = 5,
    dim: int = 24,
    spread: float = 0.3,
    offset: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Keys ``spkNN-uttMM`` and float32 embeddings: a speaker mean ~ N(0, I), plus N(0, spread^2 I) per
    utterance, all shifted by ``offset`` in every dimension (a shift that mean subtraction should remove)."""
    rng = np.random.default_rng(seed)
    means = np.repeat(rng.standard_normal((num_speakers, dim)), utts, axis=0)
    keys = np.array([f"spk{s:02d}-utt{u:02d}" for s in range(num_speakers) for u in range(utts)])
    vectors = means + spread * rng.standard_normal(means.shape) + offset
    return keys, vectors.astype(np.float32)


def all_trials(keys: np.ndarray) -> list[tuple[str, str, int]]:
    """Every unordered pair of utterances, labelled by whether the speaker prefixes match."""
    return [(a, b, int(a.split("-")[0] == b.split("-")[0])) for a, b in itertools.combinations(keys, 2)]


def write_npz(url: str, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    storage.write_bytes(url, buf.getvalue())
