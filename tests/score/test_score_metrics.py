from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from sse_dist.score.metrics import det_curve, eer, min_dcf

# Eight trials, no ties. Sorted by score, with T = target, N = non-target:
#   0.1 N   0.2 N   0.3 T   0.4 N   0.6 T   0.7 N   0.8 T   0.9 T          (4 targets, 4 non-targets)
# Raising the threshold past each score in turn (accept iff score > threshold) gives (p_miss, p_fa):
#   start (0, 1)  0.1 (0, .75)  0.2 (0, .5)  0.3 (.25, .5)  0.4 (.25, .25)  0.6 (.5, .25)  0.7 (.5, 0)
#   0.8 (.75, 0)  0.9 (1, 0)
# EER: the rates meet exactly at the point after 0.4, so EER = 0.25.
# minDCF, p_target = 0.25, c_miss = c_fa = 1: cost = .25 p_miss + .75 p_fa, normalised by min(.25, .75) = .25,
# i.e. p_miss + 3 p_fa = 3, 2.25, 1.5, 1.75, 1.0, 1.25, 0.5, 0.75, 1  ->  minDCF = 0.5 (threshold past 0.7).
# minDCF, p_target = 0.5: (.5 p_miss + .5 p_fa) / .5 = p_miss + p_fa, smallest 0.5 (after 0.4 and after 0.7).
# minDCF, p_target = 0.25, c_miss = 3: (.75 p_miss + .75 p_fa) / min(.75, .75) = p_miss + p_fa, again 0.5.
HAND_SCORES = [0.6, 0.1, 0.9, 0.4, 0.3, 0.7, 0.2, 0.8]
HAND_LABELS = [1, 0, 1, 0, 1, 0, 0, 1]


def test_hand_computed_det_eer_and_min_dcf():
    p_miss, p_fa = det_curve(HAND_SCORES, HAND_LABELS)
    np.testing.assert_allclose(p_miss, [0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1])
    np.testing.assert_allclose(p_fa, [1, 0.75, 0.5, 0.5, 0.25, 0.25, 0, 0, 0])
    assert eer(HAND_SCORES, HAND_LABELS) == pytest.approx(0.25)
    assert min_dcf(HAND_SCORES, HAND_LABELS, p_target=0.25) == pytest.approx(0.5)
    assert min_dcf(HAND_SCORES, HAND_LABELS, p_target=0.5) == pytest.approx(0.5)
    assert min_dcf(HAND_SCORES, HAND_LABELS, p_target=0.25, c_miss=3.0) == pytest.approx(0.5)


# Six trials with a target and a non-target tied at 0.5:
#   0.1 N   0.2 N   0.5 {T, N}   0.8 T   0.9 T                              (3 targets, 3 non-targets)
# Points: start (0, 1), 0.1 (0, 2/3), 0.2 (0, 1/3), 0.5 (1/3, 0), 0.8 (2/3, 0), 0.9 (1, 0).
# The tie moves both rates in one step, from (0, 1/3) to (1/3, 0); that segment meets p_miss = p_fa halfway,
# so EER = 1/6. Splitting the tie would give 0 (non-target first) or 1/3 (target first), by input order.
TIE_SCORES = [0.5, 0.9, 0.1, 0.5, 0.2, 0.8]
TIE_LABELS = [1, 1, 0, 0, 0, 1]


def test_tied_target_and_nontarget_interpolate_eer():
    p_miss, p_fa = det_curve(TIE_SCORES, TIE_LABELS)
    np.testing.assert_allclose(p_miss, [0, 0, 0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(p_fa, [1, 2 / 3, 1 / 3, 0, 0, 0])
    assert eer(TIE_SCORES, TIE_LABELS) == pytest.approx(1 / 6)
    assert eer(TIE_SCORES[::-1], TIE_LABELS[::-1]) == pytest.approx(1 / 6)


def test_separable_and_inverted_scores():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.arange(5.0)
    assert eer(scores, labels) == 0.0
    assert min_dcf(scores, labels, 0.01) == 0.0
    assert eer(-scores, labels) == 1.0
    # A system whose scores are useless costs as much as always rejecting: normalised minDCF 1.
    assert min_dcf(-scores, labels, 0.01) == pytest.approx(1.0)


def brute_force_det(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every threshold, one at a time: below all scores, then at each distinct score (accept iff above)."""
    thresholds = np.concatenate(([-np.inf], np.unique(scores)))
    targets, nontargets = scores[labels == 1], scores[labels == 0]
    p_miss = np.array([np.mean(targets <= t) for t in thresholds])
    p_fa = np.array([np.mean(nontargets > t) for t in thresholds])
    return p_miss, p_fa


def brute_force_eer(p_miss: np.ndarray, p_fa: np.ndarray) -> float:
    """EER the VoxCeleb way: the root of 1 - fpr - tpr(fpr) on the linearly interpolated ROC."""
    fpr, tpr = p_fa[::-1], 1 - p_miss[::-1]
    return brentq(lambda x: 1 - x - np.interp(x, fpr, tpr), 0.0, 1.0, xtol=1e-14)


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_brute_force_on_tied_random_scores(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    labels = (rng.random(n) < rng.uniform(0.1, 0.6)).astype(int)
    labels[:2] = [0, 1]
    # Few distinct values, so there are many ties, some mixing targets and non-targets.
    scores = np.round(rng.standard_normal(n) + 1.0 * labels, int(rng.integers(0, 2)))

    ref_miss, ref_fa = brute_force_det(scores, labels)
    p_miss, p_fa = det_curve(scores, labels)
    np.testing.assert_allclose(p_miss, ref_miss, atol=1e-12)
    np.testing.assert_allclose(p_fa, ref_fa, atol=1e-12)

    assert eer(scores, labels) == pytest.approx(brute_force_eer(ref_miss, ref_fa), abs=1e-9)
    for p_target, c_miss, c_fa in [(0.01, 1, 1), (0.001, 1, 1), (0.05, 10, 1), (0.7, 1, 1)]:
        cost = c_miss * p_target * ref_miss + c_fa * (1 - p_target) * ref_fa
        expected = cost.min() / min(c_miss * p_target, c_fa * (1 - p_target))
        got = min_dcf(scores, labels, p_target, c_miss, c_fa)
        assert got == pytest.approx(expected, abs=1e-12)
        assert got <= 1.0 + 1e-12


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [0, 0], "no target"),
        ([0.1, 0.2], [1, 1], "no non-target"),
        ([0.1, 0.2], [0, 2], "labels must be"),
        ([0.1, np.nan], [0, 1], "NaN"),
        ([0.1, 0.2, 0.3], [0, 1], "equal length"),
    ],
)
def test_bad_input_is_refused(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        eer(scores, labels)


def test_min_dcf_refuses_a_prior_outside_the_open_interval():
    with pytest.raises(ValueError, match="p_target"):
        min_dcf(HAND_SCORES, HAND_LABELS, 1.0)
