"""Source-filter synthesis of one utterance, vectorised over STFT frames.

Two excitations are built in the time domain, where pulse timing, jitter, shimmer and stop bursts are exact: the
glottal source (Rosenberg flow derivative, plus breath and aspiration noise) and the frication noise. Each is
filtered frame by frame in the STFT domain by a zero-phase envelope: the cascade of formant resonances (whose
unity DC gain makes formant amplitudes come out right without per-vowel levels) for the glottal path, a place
spectrum for frication. The frame is zero-padded to twice its length so the filters' ringing does not wrap.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import gaussian_filter1d

from ..phoneset import SILENCE
from .phones import BANDWIDTH_BASE, BANDWIDTH_SLOPE, NASAL_POLE_HZ, PLACE_NAMES, PLACES, UPPER_FORMANTS
from .plan import UtterancePlan
from .speakers import Speaker
from .tracks import Tracks, build_tracks

_FRAME_S = 0.032
_OVERLAP = 2  # periodic Hann windows at half-length hops sum to exactly 1
_NASAL_BW = (100.0, 150.0)  # Hz: bandwidths of the nasal pole and zero
# Calibrated so that, mid-phone, /s/ is ~14 dB, /sh/ ~10 dB and /f/, /th/ ~27 dB below the vowels.
_FRICATION_GAIN = 3.0
# RMS of the unit-amplitude flow derivative (about the same for any pulse shape): the scale that breath and
# aspiration noise levels are relative to.
_PULSE_RMS = 3.0


def _frame_sizes(sample_rate: int) -> tuple[int, int]:
    win = 1 << round(np.log2(_FRAME_S * sample_rate))
    return win, win // _OVERLAP


def _pulse(open_q: float, speed_q: float, size: int = 4096) -> np.ndarray:
    """Rosenberg glottal flow over one period, tabulated: a raised-cosine opening, a quarter-cosine closing."""
    x = np.arange(size) / size
    rise = open_q * speed_q
    opening = 0.5 - 0.5 * np.cos(np.pi * np.minimum(x / rise, 1.0))
    closing = np.cos(0.5 * np.pi * np.clip((x - rise) / (open_q - rise), 0.0, 1.0))
    return np.where(x < rise, opening, closing).astype(np.float32)


def _glottal_source(
    rng: np.random.Generator, tracks: Tracks, speaker: Speaker, effort: float, sample_rate: int
) -> np.ndarray:
    """Glottal flow derivative with jitter and shimmer, breath noise gated by the flow, and aspiration."""
    steady = np.cumsum(tracks.f0 / sample_rate)
    jitter = 1 + speaker.jitter * rng.standard_normal(int(steady[-1]) + 1)
    phase = np.cumsum(tracks.f0 * jitter[steady.astype(np.int64)] / sample_rate)
    cycle = phase.astype(np.int64)
    table = _pulse(float(np.clip(speaker.open_quotient - 0.04 * effort, 0.3, 0.9)), speaker.speed_quotient)
    flow = table[((phase - cycle) * len(table)).astype(np.int64)]
    shimmer = np.exp(speaker.shimmer * rng.standard_normal(cycle[-1] + 1, dtype=np.float32))
    flow *= shimmer[cycle] * tracks.voice
    # d(flow)/d(cycle): the same pulse shape gives the same excitation strength at any F0
    derivative = np.diff(flow, prepend=np.float32(0)) * (sample_rate / tracks.f0).astype(np.float32)
    noise = rng.standard_normal((2, len(flow)), dtype=np.float32)
    breath = noise[0] * (0.2 * tracks.voice + flow) * (_PULSE_RMS * 10 ** (speaker.breathiness_db / 20))
    return derivative + breath + noise[1] * tracks.aspiration * _PULSE_RMS


def _resonances(freqs: np.ndarray, centre: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """Squared magnitude of a cascade of unity-DC-gain resonators: centre, bandwidth [..., R] -> [..., K]."""
    c2 = centre[..., None] ** 2
    at_dc = c2 + (bandwidth[..., None] / 2) ** 2
    f2 = freqs**2
    # ((f - c)^2 + b^2)((f + c)^2 + b^2) == (f^2 + c^2 + b^2)^2 - 4 f^2 c^2
    return (at_dc**2 / ((f2 + at_dc) ** 2 - 4 * f2 * c2)).prod(axis=-2)


def _tract_gain(tracks: Tracks, speaker: Speaker, freqs: np.ndarray) -> np.ndarray:
    """[M, K] magnitude of the vocal tract: formant cascade, with the nasal pole-zero pair mixed in."""
    upper = speaker.formant_scale * speaker.formant_offsets[3:] * np.asarray(UPPER_FORMANTS)
    upper_bw = speaker.bandwidth_scale * (BANDWIDTH_BASE[3:] + BANDWIDTH_SLOPE * upper)
    power = _resonances(freqs, tracks.formants, tracks.bandwidths)
    power *= _resonances(freqs, upper.astype(np.float32), upper_bw.astype(np.float32))
    nasal = np.flatnonzero(tracks.nasal > 1e-3)
    pole = _resonances(freqs, np.float32([NASAL_POLE_HZ]), np.float32([_NASAL_BW[0]]))
    ones = np.ones((len(nasal), 1), np.float32)
    zero = _resonances(freqs, tracks.nasal_zero[nasal, None], _NASAL_BW[1] * ones)
    power[nasal] *= (pole / zero) ** tracks.nasal[nasal, None]
    return np.sqrt(power)


def _place_spectra(speaker: Speaker, freqs: np.ndarray) -> np.ndarray:
    """[len(PLACE_NAMES), K] frication magnitude per place, its peak scaled like the speaker's formants."""
    octaves = np.log2(np.maximum(freqs, 20.0))
    rows = []
    for name, offset in zip(PLACE_NAMES, speaker.place_offsets, strict=True):
        place = PLACES[name]
        rel = octaves - np.log2(place.peak_hz * speaker.formant_scale * offset)
        db = place.level_db - place.rise_db * np.maximum(-rel, 0) - place.fall_db * np.maximum(rel, 0)
        rows.append(10 ** (db / 20))
    return (np.stack(rows) * _FRICATION_GAIN).astype(np.float32)


def _channel_gain(coefs: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    mel = np.log1p(freqs / 700.0)
    u = mel / mel[-1]
    return (10 ** (np.cos(np.pi * np.outer(u, np.arange(1, len(coefs) + 1))) @ coefs / 20)).astype(np.float32)


def _stft(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """[M, win + 1] spectra of Hann-windowed frames zero-padded to 2 * win; frame m is centred at m*hop - win/2."""
    padded = np.concatenate([np.zeros(win, np.float32), x, np.zeros(win, np.float32)])
    frames = sliding_window_view(padded, win)[::hop]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)).astype(np.float32)
    return scipy.fft.rfft(frames * window, n=2 * win)


def _overlap_add(spectra: np.ndarray, win: int, hop: int, length: int) -> np.ndarray:
    """Inverse of :func:`_stft` for filtered spectra: frames that do not overlap are added in one slice each."""
    nfft = 2 * win
    # a delay of win/2 centres each frame in its buffer, so zero-phase ringing has room on both sides
    delay = np.exp(-2j * np.pi * np.arange(win + 1) * (win // 2) / nfft)
    frames = scipy.fft.irfft(spectra * delay.astype(np.complex64), n=nfft)
    step = nfft // hop
    out = np.zeros((len(frames) + 2 * step) * hop, np.float32)
    for g in range(step):
        group = frames[g::step].reshape(-1)
        out[g * hop : g * hop + len(group)] += group
    start = win + win // 2
    return out[start : start + length] * (2 * hop / win)


def _noise(rng: np.random.Generator, kind: str, length: int, sample_rate: int) -> np.ndarray:
    """Unit-RMS background noise: white, pink (1/f) or babble-like (modulated speech-shaped)."""
    white = rng.standard_normal(length, dtype=np.float32)
    if kind == "white":
        return white
    n = scipy.fft.next_fast_len(length, real=True)
    f = np.maximum(np.fft.rfftfreq(n, 1 / sample_rate), 20.0).astype(np.float32)
    # both roll off below ~100 Hz, where rooms and microphones pass little and speech has nothing
    shape = {
        "pink": f / np.sqrt(f * (f**2 + 100.0**2)),
        "babble": f / (f + 150.0) / np.sqrt(1 + (f / 500.0) ** 2),
    }[kind]
    noise = scipy.fft.irfft(scipy.fft.rfft(white, n=n) * shape, n=n)[:length]
    if kind == "babble":  # a few talkers: the level fluctuates at syllable rate but rarely drops out
        rate = 100  # Hz: the envelope is smooth, so draw it coarse and interpolate
        coarse = gaussian_filter1d(rng.standard_normal(length * rate // sample_rate + 2), 0.04 * rate)
        envelope = np.interp(np.arange(length) * rate / sample_rate, np.arange(len(coarse)), coarse)
        noise *= 1 + 0.35 * envelope / max(coarse.std(), 1e-12)
    return noise / max(np.sqrt(np.mean(noise**2)), 1e-12)


def synthesize(
    rng: np.random.Generator, plan: UtterancePlan, speaker: Speaker, sample_rate: int
) -> np.ndarray:
    """float32 waveform in [-1, 1]: the utterance through its channel, with background noise at its SNR."""
    style = plan.style
    win, hop = _frame_sizes(sample_rate)
    length = plan.num_samples
    frame_times = (np.arange((length + win) // hop + 1) * hop - win / 2) / sample_rate
    tracks = build_tracks(rng, plan, speaker, sample_rate, frame_times)
    freqs = np.fft.rfftfreq(2 * win, 1 / sample_rate).astype(np.float32)
    tilt = 1 / np.sqrt(1 + (freqs / float(speaker.tilt_hz * np.exp(0.15 * style.effort))) ** 2)
    channel = _channel_gain(style.channel_db, freqs)
    voiced = _stft(_glottal_source(rng, tracks, speaker, style.effort, sample_rate), win, hop)
    fricative = _stft(rng.standard_normal(length, dtype=np.float32) * tracks.frication, win, hop)
    spectra = (
        voiced * _tract_gain(tracks, speaker, freqs) * tilt
        + fricative * _place_spectra(speaker, freqs)[tracks.place]
    )
    speech = _overlap_add(spectra * channel, win, hop, length)
    if style.rt60_s > 0:
        speech = _room(rng, speech, style.rt60_s, style.drr_db, sample_rate)
    return _mix(rng, speech, plan, sample_rate)


def _room(
    rng: np.random.Generator, speech: np.ndarray, rt60: float, drr_db: float, sample_rate: int
) -> np.ndarray:
    """Reverberation: a direct path plus a tail of Gaussian noise decaying 60 dB in ``rt60`` seconds (the
    statistical model of a diffuse field; Polack), holding ``10^(-drr/10)`` of the direct energy."""
    n = np.arange(1, int(rt60 * sample_rate) + 1)
    tail = rng.standard_normal(len(n)) * np.exp(-6.9078 * n / (rt60 * sample_rate))
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    response = np.concatenate([[1.0], tail]).astype(np.float32)
    return scipy.signal.fftconvolve(speech, response)[: len(speech)].astype(np.float32)


def _mix(rng: np.random.Generator, speech: np.ndarray, plan: UtterancePlan, sample_rate: int) -> np.ndarray:
    """Set the level of the active speech, add the noise at the utterance's SNR, keep the peaks in range."""
    style = plan.style
    spoken = np.repeat(np.array(plan.phones) != SILENCE, np.diff(plan.bounds))
    speech *= 10 ** (style.level_db / 20) / max(np.sqrt(np.mean(speech[spoken] ** 2)), 1e-12)
    noise = _noise(rng, style.noise, len(speech), sample_rate) * 10 ** ((style.level_db - style.snr_db) / 20)
    signal = speech + noise
    return (signal * min(1.0, 0.99 / max(np.abs(signal).max(), 1e-12))).astype(np.float32)
