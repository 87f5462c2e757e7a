"""LDA and the two-covariance PLDA model, trained on embeddings of labelled speakers (Kaldi's backend recipe).

Two-covariance model (Brümmer & de Villiers 2010; Sizov et al. 2014): an utterance's embedding is
``x = y + e`` with the speaker variable ``y ~ N(mu, B)`` and the within-speaker residual ``e ~ N(0, W)``, both
full covariances, trained by EM. For scoring, both are diagonalised at once (Kaldi's PLDA representation): a
transform ``V`` with ``V' W V = I`` and ``V' B V = diag(psi)``, in whose coordinates the log-likelihood ratio of
"same speaker" over "different speakers" for one enrollment and one test vector is a sum over dimensions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg

log = logging.getLogger(__name__)

# Relative ridge added to a scatter matrix before it is inverted or used as a metric: with fewer utterances per
# speaker than dimensions the within-speaker scatter is singular, and a tiny ridge keeps the solution finite.
_RIDGE = 1e-9


def _ridge(m: np.ndarray) -> np.ndarray:
    return m + _RIDGE * max(np.trace(m) / len(m), 1e-12) * np.eye(len(m))


def encode_speakers(speakers: np.ndarray) -> tuple[np.ndarray, int]:
    """Class index of each utterance (int [N]) and the number of classes."""
    names, labels = np.unique(speakers, return_inverse=True)
    return labels, len(names)


def class_means(x: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class sums divided by counts ([S, D]) and the counts ([S])."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, x.shape[1]))
    np.add.at(sums, labels, x)
    return sums / counts[:, None], counts


def scatter(x: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Within-class and between-class covariance, each utterance weighted equally."""
    means, counts = class_means(x, labels, n_classes)
    centred = x - means[labels]
    within = centred.T @ centred / len(x)
    between_dev = means - x.mean(axis=0)
    between = (between_dev * counts[:, None]).T @ between_dev / len(x)
    return within, between


def fit_lda(x: np.ndarray, labels: np.ndarray, n_classes: int, dim: int) -> np.ndarray:
    """LDA projection [D, dim]: the directions that maximise between- over within-speaker variance, scaled so
    that the projected within-speaker covariance is the identity (as Kaldi's ``ivector-compute-lda``)."""
    within, between = scatter(x, labels, n_classes)
    eigvals, eigvecs = scipy.linalg.eigh(between, _ridge(within))
    return eigvecs[:, np.argsort(eigvals)[::-1][:dim]]


@dataclass(frozen=True)
class Plda:
    mean: np.ndarray
    """Speaker mean mu [D]."""
    between: np.ndarray
    """Between-speaker covariance B [D, D]."""
    within: np.ndarray
    """Within-speaker covariance W [D, D]."""

    def diagonalise(self) -> tuple[np.ndarray, np.ndarray]:
        """``V`` [D, D] and ``psi`` [D] with ``V' W V = I`` and ``V' B V = diag(psi)``."""
        psi, v = scipy.linalg.eigh(self.between, _ridge(self.within))
        return v, np.maximum(psi, 0.0)


def _initial(x: np.ndarray, labels: np.ndarray, n_classes: int) -> Plda:
    within, between = scatter(x, labels, n_classes)
    return Plda(x.mean(axis=0), _ridge(between), _ridge(within))


def _em_step(model: Plda, x: np.ndarray, labels: np.ndarray, n_classes: int) -> Plda:
    """One EM iteration; the posterior covariance of a speaker depends only on its utterance count, so it is
    computed once per distinct count."""
    sums_over_counts, counts = class_means(x, labels, n_classes)
    sums = sums_over_counts * counts[:, None]
    b_prec, w_prec = np.linalg.inv(model.between), np.linalg.inv(model.within)
    prior = b_prec @ model.mean
    y = np.empty_like(sums)
    post_cov_sum = np.zeros_like(model.between)  # sum over speakers of Cov[y]
    post_cov_weighted = np.zeros_like(model.between)  # the same, each weighted by its utterance count
    for n in np.unique(counts):
        rows = counts == n
        cov = np.linalg.inv(b_prec + n * w_prec)
        y[rows] = (prior + sums[rows] @ w_prec) @ cov  # cov and w_prec are symmetric
        post_cov_sum += rows.sum() * cov
        post_cov_weighted += rows.sum() * n * cov
    mean = y.mean(axis=0)
    between = (post_cov_sum + y.T @ y) / n_classes - np.outer(mean, mean)
    cross = sums.T @ y
    yy_weighted = (y * counts[:, None]).T @ y
    within = (x.T @ x - cross - cross.T + yy_weighted + post_cov_weighted) / len(x)
    return Plda(mean, (between + between.T) / 2, (within + within.T) / 2)


def fit_plda(x: np.ndarray, labels: np.ndarray, n_classes: int, iterations: int) -> Plda:
    """Two-covariance PLDA by EM, initialised from the class scatter matrices."""
    model = _initial(x, labels, n_classes)
    for _ in range(iterations):
        model = _em_step(model, x, labels, n_classes)
    return model


@dataclass(frozen=True)
class PldaScorer:
    """The model in scoring form: ``llr(x1, x2) = a(x1) . a(x2) + c(x1) + c(x2)``."""

    mean: np.ndarray
    transform: np.ndarray
    """``V`` [D, D]."""
    cross: np.ndarray
    """Weight of ``u1 u2`` per diagonal dimension [D]."""
    square: np.ndarray
    """Weight of ``u1^2`` (and ``u2^2``) per dimension [D], <= 0."""
    constant: float

    @classmethod
    def from_model(cls, model: Plda) -> PldaScorer:
        # Per dimension, (u1, u2) is zero-mean Gaussian with variances psi + 1 and covariance psi under "same
        # speaker", and covariance 0 under "different speakers"; the log ratio of the two densities is
        #   square (u1^2 + u2^2) + cross u1 u2 + log(psi + 1) - log(2 psi + 1) / 2.
        v, psi = model.diagonalise()
        det = 2 * psi + 1
        return cls(
            mean=model.mean,
            transform=v,
            cross=psi / det,
            square=-0.5 * psi**2 / ((psi + 1) * det),
            constant=float(np.sum(np.log1p(psi) - 0.5 * np.log(det))),
        )

    def project(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(a [N, D], c [N]) of each row of x."""
        u = (x - self.mean) @ self.transform
        return u * np.sqrt(self.cross), (u**2) @ self.square + self.constant / 2
