"""Feature-domain augmentation of log-mel filterbanks: additive noise, reverberation, a device equaliser,
narrowband (telephone) band-limiting, SpecAugment masks.

Why: whatever is constant over an utterance (channel, noise floor, room) helps the decoder reconstruct the
target from the source's embedding just as much as the voice does, so a reconstruction-trained embedding learns
the recording too. Corrupting the source independently of the target takes that shortcut away.

Noise and reverberation act on the raw (not yet mean-normalised) log-mel frames of a whole utterance, in the
power domain, where both are (approximately) additive:

* noise: ``P + g N`` with ``N`` a noise spectrogram of the chosen spectral shape whose per-bin power fluctuates
  like that of Gaussian noise through the mel filter (a gamma law whose degrees of freedom are the filter's
  effective number of FFT bins), and ``g`` set so that the utterance's total mel power over the noise's is
  exactly the drawn SNR;
* reverberation: each mel band's frame powers convolved with a direct path plus an exponentially decaying
  tail (``exp(-13.8 t / RT60)``, the 60 dB decay), its energy set by the drawn direct-to-reverberant ratio,
  and the decay faster in higher bands (``hf_ratio``). Frame-power smearing ignores phase and within-frame
  effects: it is an approximation, meant to vary the room, not to simulate one.
* equaliser: a smooth random gain curve over the mel axis (a few cosine terms, weights falling as 1/k, scaled
  to a drawn peak in dB), as another microphone or codec would colour the speech. With the utterance mean kept
  (``cmn_window: -1``) it stops the source's colouring from telling the decoder the target's channel.
* narrowband: each mel band's power scaled by a Butterworth band-pass's power response averaged under that
  band's mel filter (corners drawn around 300-3400 Hz, the telephone band, or just under the 4 kHz Nyquist
  frequency of 8 kHz audio), with a stop-band floor. It acts after noise and reverberation: both reach a
  telephone's microphone before its band limit. So that embeddings survive a change of bandwidth.

SpecAugment masks act on the normalised source segment (see ``data.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import AugmentConfig, FeatureConfig, MaskAugmentConfig
from ..frontend import frame_params, mel_weights

# Weight of the newest utterance in the running long-term average spectrum behind speech-shaped noise: about
# the last 20 utterances (other speakers, in a shuffled stream) shape it.
_LTAS_RATE = 0.05
# Spectral slopes of the coloured noises: power density ~ f^-alpha.
_SLOPES = {"white": 0.0, "pink": 1.0, "brown": 2.0}
_DECAY_60DB = math.log(1e6)


def noise_shapes(features: FeatureConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mel power per bin of each coloured noise (unit total) and each bin's degrees of freedom."""
    weights = mel_weights(features).double().numpy()  # [fft bins, mel bins]
    _, _, n_fft = frame_params(features)
    freqs = np.maximum(np.arange(len(weights)) * features.sample_rate / n_fft, features.sample_rate / n_fft)
    shapes = {}
    for name, alpha in _SLOPES.items():
        power = (weights * freqs[:, None] ** -alpha).sum(axis=0)
        shapes[name] = power / power.sum()
    # A mel bin's power is a weighted sum of exponentially distributed FFT-bin powers: its mean^2 / variance.
    dof = weights.sum(axis=0) ** 2 / np.maximum((weights**2).sum(axis=0), 1e-12)
    return shapes, np.maximum(dof, 1.0)


def add_noise(log_mel: torch.Tensor, noise_power: np.ndarray, snr_db: float) -> torch.Tensor:
    """``log(exp(log_mel) + g * noise_power)`` with ``g`` such that the SNR over all frames is ``snr_db``."""
    x = log_mel.double()
    speech = torch.logsumexp(x.flatten(), 0).item()  # log of the total power, without overflow
    gain = speech - math.log(noise_power.sum()) - snr_db * math.log(10) / 10
    return torch.logaddexp(x, torch.from_numpy(np.log(noise_power)) + gain).to(log_mel.dtype)


def reverberate(log_mel: torch.Tensor, rt60: np.ndarray, drr_db: float, shift_s: float) -> torch.Tensor:
    """Each band's frame powers convolved with ``[1, tail]``, the tail decaying at that band's ``rt60`` [D] and
    holding ``10^(-drr/10)`` of the direct path's energy."""
    frames = int(math.ceil(rt60.max() / shift_s))
    lags = np.arange(1, frames + 1)[None, :] * shift_s
    tail = np.exp(-_DECAY_60DB * lags / rt60[:, None])  # [D, K]
    tail *= 10 ** (-drr_db / 10) / tail.sum(axis=1, keepdims=True)
    kernel = np.concatenate([np.ones((len(rt60), 1)), tail], axis=1)[:, ::-1].copy()  # causal, flipped
    x = log_mel.double()
    top = x.max()
    power = (x - top).exp().T[None]  # [1, D, T], scaled to avoid overflow
    padded = torch.nn.functional.pad(power, (frames, 0))
    out = torch.nn.functional.conv1d(padded, torch.from_numpy(kernel)[:, None], groups=len(rt60))
    return (out[0].T.clamp_min(1e-300).log() + top).to(log_mel.dtype)


def band_gains(
    features: FeatureConfig, low_hz: float, high_hz: float, order: int, stop_db: float
) -> np.ndarray:
    """[D] power gain of each mel band through a Butterworth band-pass (``order`` at both edges) whose
    attenuation bottoms out at ``stop_db``: the filter's power response averaged under each mel filter."""
    weights = mel_weights(features).double().numpy()  # [fft bins, mel bins]
    _, _, n_fft = frame_params(features)
    f = np.maximum(np.arange(len(weights)) * features.sample_rate / n_fft, 1e-3)
    response = 1 / ((1 + (f / high_hz) ** (2 * order)) * (1 + (low_hz / f) ** (2 * order)))
    response = np.maximum(response, 10 ** (-stop_db / 10))
    return (weights * response[:, None]).sum(axis=0) / np.maximum(weights.sum(axis=0), 1e-12)


def eq_gains_db(bands: int, terms: int, peak_db: float, rng: np.random.Generator) -> np.ndarray:
    """[bands] gains in dB: a random cosine series over the mel axis whose largest excursion is ``peak_db``."""
    k = np.arange(1, terms + 1)
    curve = np.cos(np.pi * np.outer((np.arange(bands) + 0.5) / bands, k)) @ (rng.standard_normal(terms) / k)
    return curve * peak_db / max(np.abs(curve).max(), 1e-9)


def scale_bands(log_mel: torch.Tensor, gains: np.ndarray) -> torch.Tensor:
    """Each mel band's power times its [D] ``gains`` (a fixed filter: the equaliser, the telephone band)."""
    return log_mel + torch.from_numpy(np.log(gains)).to(log_mel.dtype)


class Augmenter:
    """Draws and applies noise and reverberation to raw log-mel utterances, from one random stream."""

    def __init__(self, cfg: AugmentConfig, features: FeatureConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        self.shift_s = features.frame_shift_ms / 1000
        self.features = features
        self.shapes, self.dof = noise_shapes(features)
        self.ltas: np.ndarray | None = None

    @property
    def enabled(self) -> bool:
        cfg = self.cfg
        return any(c.prob > 0 for c in (cfg.noise, cfg.reverb, cfg.eq, cfg.narrowband))

    def observe(self, log_mel: torch.Tensor) -> None:
        """Fold a clean utterance into the long-term average spectrum that shapes speech-like noise."""
        if self.cfg.noise.prob == 0 or "speech" not in self.cfg.noise.shapes or not len(log_mel):
            return
        x = log_mel.double()
        spectrum = torch.logsumexp(x, 0) - torch.logsumexp(x.flatten(), 0)
        shape = spectrum.exp().numpy()
        self.ltas = shape if self.ltas is None else (1 - _LTAS_RATE) * self.ltas + _LTAS_RATE * shape

    def noise_power(self, shape: str, frames: int) -> np.ndarray:
        """[frames, D] powers of a stationary noise of the given spectral shape."""
        mean = self.ltas if shape == "speech" else self.shapes[shape]
        assert mean is not None  # observe() runs before the first noisy utterance
        return mean * self.rng.gamma(self.dof, 1 / self.dof, size=(frames, len(self.dof)))

    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        noise, reverb = self.cfg.noise, self.cfg.reverb
        x = log_mel
        if not len(x):
            return x
        if reverb.prob > 0 and self.rng.random() < reverb.prob:
            rt60 = self.rng.uniform(reverb.rt60_min, reverb.rt60_max)
            rt60_bands = rt60 * np.linspace(1.0, reverb.hf_ratio, x.shape[1])
            x = reverberate(
                x, rt60_bands, self.rng.uniform(reverb.drr_db_min, reverb.drr_db_max), self.shift_s
            )
        if noise.prob > 0 and self.rng.random() < noise.prob:
            shape = noise.shapes[self.rng.integers(len(noise.shapes))]
            x = add_noise(
                x, self.noise_power(shape, len(x)), self.rng.uniform(noise.snr_db_min, noise.snr_db_max)
            )
        eq = self.cfg.eq
        if eq.prob > 0 and self.rng.random() < eq.prob:
            gains_db = eq_gains_db(x.shape[1], eq.terms, self.rng.uniform(0, eq.max_db), self.rng)
            x = scale_bands(x, 10 ** (gains_db / 10))
        band = self.cfg.narrowband
        if band.prob > 0 and self.rng.random() < band.prob:
            low = self.rng.uniform(band.low_hz_min, band.low_hz_max)
            high = self.rng.uniform(band.high_hz_min, band.high_hz_max)
            x = scale_bands(x, band_gains(self.features, low, high, band.order, band.stopband_db))
        return x


def mask(segment: torch.Tensor, cfg: MaskAugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """SpecAugment: zero (the mean, after normalisation) random time and frequency bands of a [T, D] segment."""
    if cfg.prob == 0 or rng.random() >= cfg.prob:
        return segment
    out = segment.clone()
    for count, widest, axis in (
        (cfg.time_masks, cfg.max_time_width, 0),
        (cfg.freq_masks, cfg.max_freq_width, 1),
    ):
        size = out.shape[axis]
        for _ in range(count):
            width = int(rng.integers(0, min(widest, size) + 1))
            start = int(rng.integers(0, size - width + 1))
            out.narrow(axis, start, width).zero_()
    return out
