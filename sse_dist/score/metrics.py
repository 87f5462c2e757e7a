"""Detection metrics of a verification trial list: the DET curve, equal error rate and minimum detection cost.

Convention: a trial is accepted as a target when its score is strictly above the threshold, and the
threshold is swept over the gaps between distinct scores, from below the lowest score (everything accepted:
miss rate 0, false-alarm rate 1) to the highest (everything rejected: 1, 0). Tied scores are therefore never
split: a tie of targets and non-targets moves both error rates in one step, so the result does not depend on
the order of the trials. Everything is one sort and cumulative sums, O(n log n).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _check(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {scores.shape}, {labels.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"{np.count_nonzero(~np.isfinite(scores))} scores are NaN or infinite")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 1 (target) or 0 (non-target)")
    labels = labels.astype(np.int64)
    targets = int(labels.sum())
    if targets == 0:
        raise ValueError("no target trials: the miss rate is undefined")
    if targets == labels.size:
        raise ValueError("no non-target trials: the false-alarm rate is undefined")
    return scores, labels


def det_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every distinct threshold, as the threshold rises.

    ``p_miss`` rises from 0 to 1 and ``p_fa`` falls from 1 to 0; consecutive points differ in at least one of
    them (one point per distinct score, plus the accept-all point first).
    """
    scores, labels = _check(scores, labels)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    # The last trial of each run of equal scores: the threshold can only stop after a whole run.
    run_ends = np.append(np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]), scores.size - 1)
    targets_rejected = np.cumsum(labels[order])[run_ends]
    nontargets_rejected = run_ends + 1 - targets_rejected
    n_targets = int(labels.sum())
    n_nontargets = labels.size - n_targets
    p_miss = np.concatenate(([0.0], targets_rejected / n_targets))
    p_fa = np.concatenate(([1.0], (n_nontargets - nontargets_rejected) / n_nontargets))
    return p_miss, p_fa


def eer(scores: ArrayLike, labels: ArrayLike) -> float:
    """Equal error rate, a fraction in [0, 1].

    Where the DET curve, taken as straight segments between its operating points, crosses p_miss = p_fa. This
    is the same as solving ``1 - fpr = tpr`` on the linearly interpolated ROC (the usual VoxCeleb recipe,
    ``brentq`` over ``interp1d(fpr, tpr)``), not the ROC-convex-hull EER of BOSARIS, which can be lower.
    """
    p_miss, p_fa = det_curve(scores, labels)
    i, alpha = _eer_crossing(p_miss, p_fa)
    return float(p_miss[i - 1] + alpha * (p_miss[i] - p_miss[i - 1]))


def _eer_crossing(p_miss: np.ndarray, p_fa: np.ndarray) -> tuple[int, float]:
    """The DET segment ``(i - 1, i)`` where p_miss = p_fa, and how far along it (0 to 1) the crossing lies."""
    # p_fa - p_miss falls strictly along the curve, from 1 to -1, so it changes sign exactly once.
    i = int(np.argmax(p_miss >= p_fa))
    gap_before = p_fa[i - 1] - p_miss[i - 1]
    gap_after = p_fa[i] - p_miss[i]
    return i, float(gap_before / (gap_before - gap_after))


def eer_threshold(scores: ArrayLike, labels: ArrayLike) -> float:
    """A score threshold at the EER operating point: deciding "target" for scores strictly above it gives
    miss and false-alarm rates equal to the EER (interpolated between the two operating points around it).

    Each DET point is realised by a threshold midway between the distinct score it rejects last and the next
    one (the accept-all point: as far below the lowest score), so perfectly separated scores give the midpoint
    between the highest non-target and the lowest target score.
    """
    scores, labels = _check(scores, labels)
    p_miss, p_fa = det_curve(scores, labels)
    distinct = np.unique(scores)
    gap = (distinct[1] - distinct[0]) / 2 if len(distinct) > 1 else 0.5
    # thresholds[k] realises DET point k: [accept all, reject the lowest distinct score, ..., reject all].
    middles = (distinct[:-1] + distinct[1:]) / 2
    thresholds = np.concatenate(([distinct[0] - gap], middles, distinct[-1:]))
    i, alpha = _eer_crossing(p_miss, p_fa)
    return float(thresholds[i - 1] + alpha * (thresholds[i] - thresholds[i - 1]))


def min_dcf(
    scores: ArrayLike, labels: ArrayLike, p_target: float, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """Minimum over thresholds of the normalised detection cost (NIST SRE; Kaldi's ``compute_min_dcf.py``).

    ``(c_miss p_target p_miss + c_fa (1 - p_target) p_fa) / min(c_miss p_target, c_fa (1 - p_target))``.
    The accept-all and reject-all points are included, so the result is at most 1 (the cost of a system that
    ignores its scores); Kaldi's script omits the accept-all point, which only matters when it is the minimum.
    """
    if not 0 < p_target < 1:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    p_miss, p_fa = det_curve(scores, labels)
    cost = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))
