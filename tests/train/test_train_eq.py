import math

import numpy as np
import pytest
import torch

from sse_dist.config import AugmentConfig, EqAugmentConfig, FeatureConfig
from sse_dist.train.augment import Augmenter, eq_gains_db

FEATURES = FeatureConfig()


def test_eq_curve_peaks_at_the_drawn_excursion_and_is_smooth():
    rng = np.random.default_rng(0)
    for terms in (1, 4, 8):
        gains = eq_gains_db(40, terms, 7.5, rng)
        assert gains.shape == (40,) and np.abs(gains).max() == pytest.approx(7.5)
        # A cosine series of `terms` terms changes sign at most `terms` times over the axis.
        assert (np.diff(np.sign(gains)) != 0).sum() <= terms
    one = eq_gains_db(40, 1, 3.0, rng)
    assert np.all(np.diff(one) < 0) or np.all(np.diff(one) > 0)  # a single term is a tilt


def test_eq_adds_one_gain_per_band_to_every_frame_at_prob_one():
    x = torch.randn(30, 40) * 3 + 10
    aug = Augmenter(
        AugmentConfig(eq=EqAugmentConfig(prob=1.0, max_db=12.0)), FEATURES, np.random.default_rng(2)
    )
    assert aug.enabled
    shifts = [aug(x) - x for _ in range(5)]
    for shift in shifts:
        torch.testing.assert_close(shift, shift[:1].expand_as(shift))  # constant over time: a channel
        assert shift.abs().max() <= 12.0 * math.log(10) / 10 + 1e-5  # 12 dB of power in log (neper) units
    assert len({round(float(s.abs().max()), 4) for s in shifts}) == 5  # each utterance its own curve and peak


def test_eq_off_is_the_identity_and_mean_normalisation_removes_it():
    x = torch.randn(30, 40)
    assert torch.equal(Augmenter(AugmentConfig(), FEATURES, np.random.default_rng(0))(x), x)
    out = Augmenter(AugmentConfig(eq=EqAugmentConfig(prob=1.0)), FEATURES, np.random.default_rng(0))(x)
    assert not torch.allclose(out, x)
    torch.testing.assert_close(out - out.mean(0), x - x.mean(0))
