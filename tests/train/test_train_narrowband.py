import numpy as np
import pytest
import torch

from sse_dist.config import AugmentConfig, ConfigError, FeatureConfig, NarrowbandAugmentConfig
from sse_dist.frontend import frame_params, mel_weights
from sse_dist.train.augment import Augmenter, band_gains

FEATURES = FeatureConfig()


def centres_hz() -> np.ndarray:
    """Each mel band's centre frequency (its filter's peak)."""
    _, _, n_fft = frame_params(FEATURES)
    return mel_weights(FEATURES).numpy().argmax(axis=0) * FEATURES.sample_rate / n_fft


def test_band_gains_pass_the_telephone_band_and_cut_the_rest():
    gains_db = 10 * np.log10(band_gains(FEATURES, 300.0, 3400.0, order=12, stop_db=50.0))
    f = centres_hz()
    assert np.abs(gains_db[(f > 600) & (f < 2800)]).max() < 0.5
    # Mel bands above the corner are wide: the first ones still hold some of the edge's skirt.
    assert np.all(np.diff(gains_db[f > 3400]) <= 0) and gains_db[f > 4000].max() < -15
    assert gains_db[f > 5500].max() < -45 and gains_db[f > 5500].min() >= -50 - 1e-6  # the floor
    assert gains_db[f < 120].max() < -20


def test_narrowband_source_copy_at_prob_one_and_untouched_at_zero():
    x = torch.full((50, 40), 10.0)
    band = NarrowbandAugmentConfig(
        prob=1.0, low_hz_min=300, low_hz_max=300, high_hz_min=3400, high_hz_max=3400
    )
    out = Augmenter(AugmentConfig(narrowband=band), FEATURES, np.random.default_rng(0))(x)
    expected = x + torch.from_numpy(np.log(band_gains(FEATURES, 300.0, 3400.0, 12, 50.0))).float()
    torch.testing.assert_close(out, expected)
    off = Augmenter(AugmentConfig(), FEATURES, np.random.default_rng(0))
    assert not off.enabled and torch.equal(off(x), x)


def test_corners_are_drawn_per_utterance_within_their_ranges():
    aug = Augmenter(
        AugmentConfig(narrowband=NarrowbandAugmentConfig(prob=1.0)), FEATURES, np.random.default_rng(1)
    )
    x = torch.zeros(5, 40)
    outs = [aug(x) for _ in range(4)]
    assert not torch.equal(outs[0], outs[1])
    f = centres_hz()
    for out in outs:  # corners in [200, 400] and [3200, 3800] Hz
        assert out[0, (f > 700) & (f < 2600)].abs().max() < 0.05
        assert out[0, f > 5500].max() < -10  # log power: -10 nepers is -43 dB


def test_config_refuses_a_band_upside_down():
    with pytest.raises(ConfigError, match="high_hz_min"):
        NarrowbandAugmentConfig(low_hz_max=4000, high_hz_min=3000).validate()
