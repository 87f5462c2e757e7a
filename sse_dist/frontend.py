"""Kaldi-compatible log-mel filterbanks, energy VAD and mean normalisation, in torch (no torchaudio).

Conventions follow Kaldi's ``compute-fbank-feats``/``compute-vad`` (snip_edges, DC removal, raw log energy,
pre-emphasis, Povey window, power spectrum, mel triangles on the 1127*ln(1+f/700) scale), so thresholds and
recipes from Kaldi carry over; ``tests/test_frontend.py`` checks against kaldi-native-fbank.
Waveforms are float in [-1, 1] and scaled to 16-bit range, as Kaldi reads them.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy.signal import resample_poly

from .config import FeatureConfig

_EPS = float(np.finfo(np.float32).eps)


def frame_params(cfg: FeatureConfig) -> tuple[int, int, int]:
    """(window, shift, FFT size) in samples."""
    win = int(cfg.sample_rate * cfg.frame_length_ms / 1000)
    shift = int(cfg.sample_rate * cfg.frame_shift_ms / 1000)
    return win, shift, 1 << (win - 1).bit_length()


def num_frames(num_samples: int, cfg: FeatureConfig) -> int:
    win, shift, _ = frame_params(cfg)
    return 0 if num_samples < win else 1 + (num_samples - win) // shift


def frame_centre_seconds(t: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Time of the centre of frame(s) ``t`` (how time alignments are put on the frame grid)."""
    win, shift, _ = frame_params(cfg)
    return (np.asarray(t) * shift + win / 2) / cfg.sample_rate


@functools.lru_cache(maxsize=8)
def _mel_matrix(sample_rate: int, n_fft: int, num_bins: int, low: float, high: float) -> torch.Tensor:
    """[n_fft/2 + 1, num_bins] triangular weights; the Nyquist bin has none (as in Kaldi)."""

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)

    high = high if high > 0 else sample_rate / 2 + high
    edges = np.linspace(mel(low), mel(high), num_bins + 2)
    fft_mel = mel(np.arange(n_fft // 2) * sample_rate / n_fft)[:, None]
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    up = (fft_mel - left) / (centre - left)
    down = (right - fft_mel) / (right - centre)
    weights = np.where((fft_mel > left) & (fft_mel < right), np.minimum(up, down), 0.0)
    weights = np.vstack([weights, np.zeros((1, num_bins))])
    return torch.from_numpy(weights.astype(np.float32))


def mel_weights(cfg: FeatureConfig) -> torch.Tensor:
    """The filterbank [n_fft/2 + 1, num_mel_bins] that :func:`fbank` applies to the power spectrum."""
    _, _, n_fft = frame_params(cfg)
    return _mel_matrix(cfg.sample_rate, n_fft, cfg.num_mel_bins, cfg.low_freq, cfg.high_freq)


@functools.lru_cache(maxsize=8)
def _povey_window(win: int) -> torch.Tensor:
    n = torch.arange(win, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / (win - 1))).pow(0.85).float()


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    if orig_rate == new_rate:
        return wave
    g = math.gcd(orig_rate, new_rate)
    return resample_poly(wave, new_rate // g, orig_rate // g).astype(np.float32)


CHUNK_FRAMES = 6000
"""Frames analysed at a time (60 s at a 10 ms shift). Frames are independent, so chunks give the same features
as one pass, while the working set (frames, spectra: ~60 bytes per sample at once) stays ~20 MB instead of
growing with the recording: a 1-hour utterance would otherwise need several GB."""


def fbank(
    wave: np.ndarray | torch.Tensor, cfg: FeatureConfig, chunk_frames: int = CHUNK_FRAMES
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mel filterbank [T, num_mel_bins] and raw log energy [T] of a mono float waveform at cfg.sample_rate."""
    x = torch.as_tensor(wave, dtype=torch.float32)
    win, shift, _ = frame_params(cfg)
    if x.numel() < win:
        return torch.zeros(0, cfg.num_mel_bins), torch.zeros(0)
    frames = x.unfold(0, win, shift)  # a view: no copy of the waveform
    log_mel, log_energy = torch.empty(len(frames), cfg.num_mel_bins), torch.empty(len(frames))
    for i in range(0, len(frames), chunk_frames):
        log_mel[i : i + chunk_frames], log_energy[i : i + chunk_frames] = _fbank_frames(
            frames[i : i + chunk_frames], cfg
        )
    return log_mel, log_energy


def _fbank_frames(frames: torch.Tensor, cfg: FeatureConfig) -> tuple[torch.Tensor, torch.Tensor]:
    win, _, n_fft = frame_params(cfg)
    frames = frames * 32768.0
    if cfg.dither > 0:
        frames = frames + cfg.dither * torch.randn_like(frames)
    frames = frames - frames.mean(dim=1, keepdim=True)
    log_energy = frames.pow(2).sum(dim=1).clamp_min(_EPS).log()
    c = cfg.preemphasis
    frames = torch.cat([frames[:, :1] * (1 - c), frames[:, 1:] - c * frames[:, :-1]], dim=1)
    spectrum = torch.fft.rfft(frames * _povey_window(win), n=n_fft).abs().pow(2)
    mel = _mel_matrix(cfg.sample_rate, n_fft, cfg.num_mel_bins, cfg.low_freq, cfg.high_freq)
    return (spectrum @ mel).clamp_min(_EPS).log(), log_energy


def energy_vad(log_energy: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Kaldi's ``compute-vad``: bool [T], a frame is speech if enough of its neighbourhood is loud enough."""
    n = log_energy.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.bool)
    threshold = cfg.vad_energy_threshold + cfg.vad_energy_mean_scale * log_energy.mean()
    above = (log_energy > threshold).float()[None, None]
    k = 2 * cfg.vad_frames_context + 1
    votes = torch.nn.functional.conv1d(above, torch.ones(1, 1, k), padding=cfg.vad_frames_context)[0, 0]
    counted = torch.nn.functional.conv1d(torch.ones_like(above), torch.ones(1, 1, k), padding=k // 2)[0, 0]
    return votes >= counted * cfg.vad_proportion_threshold


def apply_cmn(feats: torch.Tensor, window: int = 0) -> torch.Tensor:
    """Subtract the mean: of the whole utterance (window=0) or of a centred sliding window (Kaldi's apply-cmvn-sliding
    with --center, which shifts the window inside the utterance at the edges); window < 0 leaves the features as
    they are."""
    if window < 0:
        return feats
    if window == 0:
        return feats - feats.mean(dim=0, keepdim=True)
    n = feats.shape[0]
    # A window longer than the utterance is the whole utterance. No branch on the length: the exported (ONNX)
    # embedding graph runs this with the frame count unknown until run time.
    width = torch.sym_min(window, n)
    start = (torch.arange(n) - width // 2).clamp(0, n - width)
    csum = torch.cat([torch.zeros(1, feats.shape[1], dtype=feats.dtype), feats.cumsum(0)])
    return feats - (csum[start + width] - csum[start]) / width


def mfcc_from_fbank(log_mel: torch.Tensor, num_ceps: int, lifter: float = 22.0) -> torch.Tensor:
    """MFCCs from log-mel energies: orthonormal DCT-II and Kaldi's cepstral lifter."""
    d = log_mel.shape[1]
    k = torch.arange(num_ceps, dtype=torch.float32)[:, None]
    n = torch.arange(d, dtype=torch.float32)[None, :]
    dct = torch.cos(math.pi / d * (n + 0.5) * k) * math.sqrt(2.0 / d)
    dct[0] /= math.sqrt(2.0)
    ceps = log_mel @ dct.T
    return ceps * (1 + 0.5 * lifter * torch.sin(math.pi * k.T / lifter)) if lifter else ceps
