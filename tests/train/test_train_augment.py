import dataclasses
import math

import numpy as np
import pytest
import torch

from sse_dist.config import (
    AugmentConfig,
    ConfigError,
    DataConfig,
    ExperimentConfig,
    FeatureConfig,
    MaskAugmentConfig,
    NoiseAugmentConfig,
    ReverbAugmentConfig,
    load,
)
from sse_dist.shard.fields import describe
from sse_dist.train.augment import Augmenter, add_noise, mask, noise_shapes, reverberate
from sse_dist.train.data import Batch, Utterance, augment_source, build_loader, cut_pairs, normalise

FEATURES = FeatureConfig()
ON = AugmentConfig(noise=NoiseAugmentConfig(prob=1.0), reverb=ReverbAugmentConfig(prob=1.0))


def log_mel(frames: int = 300, seed: int = 0) -> torch.Tensor:
    """Speech-like raw log-mel: a sloping spectrum whose level moves from frame to frame."""
    rng = np.random.default_rng(seed)
    level = 12 + 3 * np.sin(np.arange(frames) / 7)[:, None] + rng.normal(0, 1, (frames, 40))
    return torch.from_numpy((level - np.linspace(0, 6, 40)).astype(np.float32))


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    speech = clean.double().exp()
    return 10 * math.log10(speech.sum() / (noisy.double().exp() - speech).sum())


def utterances(n: int):
    for i in range(n):
        yield Utterance(log_mel(250 + 10 * i, seed=i), torch.zeros(250 + 10 * i, 3), i)


@pytest.mark.parametrize("target", [-5.0, 0.0, 7.5, 20.0])
def test_noise_is_added_at_exactly_the_requested_snr_in_the_power_domain(target):
    shapes, dof = noise_shapes(FEATURES)
    rng = np.random.default_rng(0)
    noise = shapes["pink"] * rng.gamma(dof, 1 / dof, size=(300, 40))
    clean = log_mel()
    noisy = add_noise(clean, noise, target)
    assert noisy.shape == clean.shape and noisy.dtype == torch.float32
    assert (noisy >= clean).all()  # power only ever adds
    assert snr_db(clean, noisy) == pytest.approx(target, abs=1e-3)


def test_coloured_noises_tilt_as_their_slopes_say():
    shapes, dof = noise_shapes(FEATURES)
    # Higher mel bins are wider in Hz: white noise gains power with frequency, brown loses it fastest.
    top_over_bottom = {k: v[-1] / v[0] for k, v in shapes.items()}
    assert top_over_bottom["white"] > 1 > top_over_bottom["pink"] > top_over_bottom["brown"]
    for shape in shapes.values():
        assert shape.sum() == pytest.approx(1.0)
    # Wider (higher) filters sum more FFT bins, so their power fluctuates less.
    assert (dof >= 1).all() and dof[-1] > 5 * dof[0]


def test_reverberation_is_a_causal_per_band_exponential_tail_with_the_drawn_drr():
    shift, drr = 0.01, 6.0
    rt60 = np.linspace(0.6, 0.3, 40)
    impulse = torch.full((200, 40), -50.0, dtype=torch.float64)  # silence, then one loud frame
    impulse[20] = 0.0
    out = reverberate(impulse, rt60, drr, shift).exp()
    assert out.shape == impulse.shape
    assert torch.allclose(out[:20], impulse[:20].exp())  # nothing before the impulse
    assert torch.allclose(out[20], torch.ones(40, dtype=torch.float64))  # the direct path
    tail = out[21:] - impulse[21:].exp()
    np.testing.assert_allclose(tail.sum(0).numpy(), 10 ** (-drr / 10), rtol=1e-6)
    # 60 dB per rt60: between lags 1 and 11 (0.1 s) the power falls by 60 * 0.1 / rt60 dB, band by band.
    fall_db = 10 * np.log10((tail[0] / tail[10]).numpy())
    np.testing.assert_allclose(fall_db, 60 * 0.1 / rt60, rtol=1e-6)


def test_augmenter_is_deterministic_per_seed_and_varies_across_seeds():
    def run(seed: int) -> list[torch.Tensor]:
        aug = Augmenter(ON, FEATURES, np.random.default_rng(seed))
        out = []
        for s in utterances(5):
            aug.observe(s.feats)
            out.append(aug(s.feats))
        return out

    first, again, other = run(1), run(1), run(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_snr_of_each_noisy_source_lies_in_the_configured_range():
    cfg = AugmentConfig(noise=NoiseAugmentConfig(prob=1.0, snr_db_min=5, snr_db_max=10))
    achieved = [snr_db(s.feats, s.source_feats) for s in augment_source(utterances(40), cfg, FEATURES, 0)]
    assert min(achieved) >= 5 - 1e-3 and max(achieved) <= 10 + 1e-3
    assert np.std(achieved) > 0.5  # drawn, not fixed


def test_disabled_augmentation_is_the_identity():
    cfg = AugmentConfig()
    inputs = list(utterances(4))
    outputs = list(augment_source(iter(inputs), cfg, FEATURES, 0))
    assert [o is i for o, i in zip(outputs, inputs, strict=True)] == [True] * 4
    segment = log_mel(100)
    assert mask(segment, MaskAugmentConfig(prob=0.0), np.random.default_rng(0)) is segment


@pytest.mark.parametrize("target", ["clean", "same", "independent"])
def test_the_target_is_cut_from_the_clean_same_or_an_independent_copy(target):
    cfg = AugmentConfig(noise=NoiseAugmentConfig(prob=1.0), target=target)
    inputs = list(utterances(3))
    for s, original in zip(augment_source(iter(inputs), cfg, FEATURES, 0), inputs, strict=True):
        assert not torch.equal(s.source_feats, original.feats)
        assert torch.equal(s.feats, original.feats) == (target == "clean")
        assert torch.equal(s.feats, s.source_feats) == (target == "same")


def test_source_segments_come_from_the_normalised_augmented_copy():
    cfg = AugmentConfig(noise=NoiseAugmentConfig(prob=1.0, snr_db_min=0, snr_db_max=0))
    data = DataConfig(source_frames=100, target_frames=50)
    pipeline = cut_pairs(normalise(augment_source(utterances(6), cfg, FEATURES, 0), 0), data, seed=0)
    clean = cut_pairs(normalise(utterances(6), 0), data, seed=0)
    for noisy, plain in zip(pipeline, clean, strict=True):
        assert torch.equal(noisy.target, plain.target)  # the same cut, the clean target
        assert not torch.equal(noisy.source, plain.source)
        assert noisy.source.shape == plain.source.shape


def test_masks_zero_bands_no_wider_than_configured():
    cfg = MaskAugmentConfig(prob=1.0, time_masks=2, max_time_width=7, freq_masks=1, max_freq_width=4)
    segment = torch.randn(150, 40) + 10  # no zeros of its own
    masked = mask(segment, cfg, np.random.default_rng(3))
    rows = (masked == 0).all(dim=1).sum().item()
    cols = (masked == 0).all(dim=0).sum().item()
    assert rows <= 14 and cols <= 4 and rows + cols > 0
    kept = masked != 0
    assert masked.shape == segment.shape and torch.equal(masked[kept], segment[kept])
    again = mask(segment, cfg, np.random.default_rng(3))
    assert torch.equal(masked, again)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.data.augment.noise.shapes=speech,violet", r"noise\.shapes: unknown \['violet'\]"),
        ("train.data.augment.noise.snr_db_min=30", r"noise\.snr_db_min: must be <= snr_db_max"),
        ("train.data.augment.reverb.prob=1.5", r"reverb\.prob: must be in \[0, 1\]"),
        ("train.data.augment.target=noisy", r"augment\.target: must be one of"),
        ("train.data.augment.eq.prob=2", r"eq\.prob: must be in \[0, 1\]"),
        ("train.data.augment.eq.prob=-0.1", r"eq\.prob: must be in \[0, 1\]"),
        ("train.data.augment.eq.terms=0", r"eq\.terms: must be >= 1"),
        ("train.data.augment.eq.max_db=-1", r"eq\.max_db: must be >= 0"),
    ],
)
def test_bad_augmentation_settings_name_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load(ExperimentConfig, [], [override])


@pytest.mark.integration
def test_the_training_loader_feeds_augmented_sources_and_clean_targets(shard_sets):
    corpus = describe([shard_sets["train"]], "phones")
    clean_cfg = DataConfig(source_frames=60, target_frames=40, num_workers=0, shuffle_buffer=0)
    on = AugmentConfig(
        noise=NoiseAugmentConfig(prob=1.0),
        reverb=ReverbAugmentConfig(prob=1.0),
        masks=MaskAugmentConfig(prob=1.0),
    )
    augmented_cfg = dataclasses.replace(clean_cfg, augment=on)

    def first_batch(cfg: DataConfig) -> Batch:
        return next(
            iter(build_loader(corpus, cfg, "phones", micro_batch=4, num_batches=1, spk2idx={}, seed=3))
        )

    clean, augmented = first_batch(clean_cfg), first_batch(augmented_cfg)
    # The same utterances and cuts (augmentation draws from its own streams): the targets are untouched.
    assert torch.equal(clean.target, augmented.target) and torch.equal(clean.phones, augmented.phones)
    assert clean.source.shape == augmented.source.shape == (4, 60, 40)
    assert not torch.equal(clean.source, augmented.source)
    assert torch.equal(first_batch(augmented_cfg).source, augmented.source)  # and it repeats
