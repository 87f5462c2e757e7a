import kaldi_native_fbank as knf
import numpy as np
import pytest
import torch

from sse_dist.config import FeatureConfig
from sse_dist.frontend import (
    apply_cmn,
    energy_vad,
    fbank,
    frame_centre_seconds,
    mfcc_from_fbank,
    num_frames,
    resample,
)


def _speechlike(seconds=3.0, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    env = (np.sin(2 * np.pi * 2.5 * t) > 0).astype(np.float32)  # bursts of "speech" and pauses
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20))
    return (0.2 * env * voiced + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def _kaldi_reference(wave, cfg):
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = cfg.sample_rate
    opts.mel_opts.num_bins = cfg.num_mel_bins
    opts.mel_opts.low_freq = cfg.low_freq
    opts.mel_opts.high_freq = cfg.high_freq
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(cfg.sample_rate, (wave * 32768).tolist())
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


@pytest.mark.parametrize(("rate", "bins"), [(16000, 40), (16000, 80), (8000, 23)])
def test_fbank_matches_kaldi_native_fbank(rate, bins):
    cfg = FeatureConfig(sample_rate=rate, num_mel_bins=bins)
    wave = _speechlike(rate=rate)
    ours, _ = fbank(wave, cfg)
    ref = _kaldi_reference(wave, cfg)
    assert ours.shape == ref.shape == (num_frames(len(wave), cfg), bins)
    np.testing.assert_allclose(ours.numpy(), ref, atol=2e-3)


def test_short_input_gives_no_frames():
    cfg = FeatureConfig()
    feats, energy = fbank(np.zeros(100, np.float32), cfg)
    assert feats.shape == (0, 40) and energy.shape == (0,)
    assert energy_vad(energy, cfg).shape == (0,)


def test_energy_vad_finds_the_loud_half():
    cfg = FeatureConfig()
    wave = _speechlike()
    _, energy = fbank(wave, cfg)
    vad = energy_vad(energy, cfg).numpy()
    centres = frame_centre_seconds(np.arange(len(vad)), cfg)
    loud = np.sin(2 * np.pi * 2.5 * centres) > 0
    assert (vad == loud).mean() > 0.85
    assert 0.3 < vad.mean() < 0.7


def test_cmn_whole_utterance_and_sliding():
    x = torch.randn(500, 4) + torch.linspace(0, 10, 500)[:, None]
    whole = apply_cmn(x, 0)
    assert torch.allclose(whole.mean(0), torch.zeros(4), atol=1e-5)
    slid = apply_cmn(x, 100)
    # Centred window away from the edges: the frame minus the mean of its 100 neighbours.
    t = 250
    assert torch.allclose(slid[t], x[t] - x[t - 50 : t + 50].mean(0), atol=1e-4)
    # At the edges the window is shifted inside the utterance (Kaldi's --center behaviour).
    assert torch.allclose(slid[0], x[0] - x[:100].mean(0), atol=1e-4)
    assert torch.allclose(slid[-1], x[-1] - x[-100:].mean(0), atol=1e-4)
    short = torch.randn(50, 4)
    assert torch.allclose(
        apply_cmn(short, 100), apply_cmn(short, 0), atol=1e-5
    )  # cumsum against mean: rounding
    assert torch.equal(apply_cmn(x, -1), x)  # -1: no normalisation, the spectral envelope kept


def test_resample_keeps_a_tone_in_place():
    rate = 8000
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    up = resample(tone, rate, 16000)
    assert len(up) == 16000
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) - 440) <= 1
    assert resample(tone, rate, rate) is tone


def test_mfcc_first_coefficient_tracks_level():
    log_mel = torch.zeros(3, 40)
    log_mel[1] += 1.0
    ceps = mfcc_from_fbank(log_mel, 13)
    assert ceps.shape == (3, 13)
    assert ceps[1, 0] > ceps[0, 0]
    assert torch.allclose(ceps[1, 1:], ceps[0, 1:], atol=1e-4)  # a flat offset only moves c0
