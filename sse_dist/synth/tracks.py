"""Control tracks of one utterance: source amplitudes and F0 per sample, filter parameters per STFT frame.

Targets are placed inside each phone and interpolated across phone boundaries, then smoothed, so formants glide
from one phone to the next (coarticulation) instead of stepping at the aligned boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..phoneset import INDEX, SILENCE
from .phones import (
    BANDWIDTH_BASE,
    BANDWIDTH_SLOPE,
    NASAL_ZERO_HZ,
    PLACE_NAMES,
    SPECS,
    PhoneSpec,
)
from .plan import UtterancePlan
from .speakers import Speaker

_RAMP = 0.008  # s: onset/offset ramp of a sustained source
_SHARP = 0.001  # s: ramps at a stop release
_BURST = 0.010  # s
_COARTICULATION = 0.012  # s: sd of the Gaussian that smooths formant tracks
_ACCENT_WIDTH = 0.07  # s: sd of a pitch accent's bump
_DRIFT = (0.15, 0.6)  # s, semitones: time scale and size of the slow random F0 wander

# Source amplitudes (voicing, aspiration through the tract, frication) of a sustained phone, by kind ...
_SUSTAINED = {
    "silence": (0.0, 0.0, 0.0),
    "vowel": (1.0, 0.0, 0.0),
    "approximant": (0.55, 0.0, 0.0),
    "nasal": (0.45, 0.0, 0.0),
    "aspirate": (0.0, 0.35, 0.0),
}
# ... and of the parts of obstruents, by voicing. Voiced obstruents keep some voicing through the constriction.
_FRICATION = {True: (0.3, 0.0, 0.45), False: (0.0, 0.0, 1.0)}
_CLOSURE = {True: (0.12, 0.0, 0.0), False: (0.0, 0.0, 0.0)}
_BURST_AMPS = {True: (0.3, 0.0, 0.7), False: (0.0, 0.0, 1.4)}
_RELEASE = {True: (0.7, 0.0, 0.0), False: (0.0, 0.35, 0.0)}  # voicing starts at once, or after aspiration
_CLOSURE_SHARE = {
    ("affricate", True): 0.4,
    ("affricate", False): 0.4,
    ("stop", True): 0.7,
    ("stop", False): 0.55,
}


@dataclass(frozen=True)
class Tracks:
    voice: np.ndarray
    """[N] amplitude of the glottal source."""
    aspiration: np.ndarray
    """[N] amplitude of turbulence noise at the glottis (filtered by the whole tract)."""
    frication: np.ndarray
    """[N] amplitude of turbulence noise at a constriction (filtered by the place's spectrum)."""
    f0: np.ndarray
    """[N] fundamental frequency, Hz."""
    formants: np.ndarray
    """[M, 3] F1-F3 per frame, Hz (F4-F6 are the speaker's constants)."""
    bandwidths: np.ndarray
    """[M, 3] per frame, Hz."""
    nasal: np.ndarray
    """[M] weight of the nasal pole-zero pair."""
    nasal_zero: np.ndarray
    """[M] frequency of the nasal anti-resonance, Hz."""
    place: np.ndarray
    """[M] index into PLACE_NAMES of the frication spectrum."""


def _segments(
    spec: PhoneSpec, start: float, end: float
) -> list[tuple[float, float, float, float, float, float]]:
    """(start, end, voice, aspiration, frication, ramp) pieces of one phone; stops and affricates have several."""
    if spec.kind in _SUSTAINED:
        return [(start, end, *_SUSTAINED[spec.kind], _RAMP)]
    if spec.kind == "fricative":
        return [(start, end, *_FRICATION[spec.voiced], _RAMP)]
    closure = start + (end - start) * _CLOSURE_SHARE[spec.kind, spec.voiced]
    hold = (start, closure, *_CLOSURE[spec.voiced], _SHARP)
    if spec.kind == "affricate":
        return [hold, (closure, end, *_FRICATION[spec.voiced], _RAMP)]
    burst = min(closure + _BURST, (closure + end) / 2)
    return [
        hold,
        (closure, burst, *_BURST_AMPS[spec.voiced], _SHARP),
        (burst, end, *_RELEASE[spec.voiced], _SHARP),
    ]


def _source_amplitudes(plan: UtterancePlan, sample_rate: int) -> np.ndarray:
    """[3, N] voice, aspiration and frication amplitudes: piecewise constant with linear ramps."""
    times, values = [], []
    for phone, a, b in zip(plan.phones, plan.bounds[:-1] / sample_rate, plan.bounds[1:] / sample_rate):
        for start, end, *amps, ramp in _segments(SPECS[phone], a, b):
            r = min(ramp, 0.49 * (end - start))
            times += [start + r, end - r]
            values += [amps, amps]
    t = np.arange(plan.num_samples) / sample_rate
    return np.stack([np.interp(t, times, column) for column in np.asarray(values).T]).astype(np.float32)


def _nearest(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """values, except where mask is False: the value of the nearest phone where it is True (ties look ahead)."""
    hits = np.flatnonzero(mask)
    if hits.size == 0:
        return values
    pos = np.arange(len(mask))
    right = hits[np.minimum(np.searchsorted(hits, pos), hits.size - 1)]
    left = hits[np.maximum(np.searchsorted(hits, pos, side="right") - 1, 0)]
    return values[np.where(np.abs(right - pos) <= np.abs(pos - left), right, left)]


def _formants(
    plan: UtterancePlan, speaker: Speaker, edges: np.ndarray, times: np.ndarray, sd: float
) -> np.ndarray:
    """[M, 3]: F1-F3 glide between the phone targets."""
    points, targets = [], []
    for phone, a, b in zip(plan.phones, edges[:-1], edges[1:]):
        spec = SPECS[phone]
        if spec.onset is None or spec.offset is None:
            continue  # silence and /h/ take their neighbours' tract shape
        offsets = speaker.phone_offsets[INDEX[phone]]
        points += [a + (b - a) / 4, b - (b - a) / 4]
        targets += [np.log(np.asarray(spec.onset) * offsets), np.log(np.asarray(spec.offset) * offsets)]
    log_f = np.asarray(targets)
    low = np.stack([np.interp(times, points, log_f[:, k]) for k in range(3)], axis=1)
    low = gaussian_filter1d(low, sd, axis=0, mode="nearest")
    return np.exp(low) * (speaker.formant_scale * speaker.formant_offsets[:3])


def _nasality(plan: UtterancePlan, edges: np.ndarray, times: np.ndarray, sd: float) -> np.ndarray:
    """[M] 1 inside nasals, spreading into the neighbours (anticipatory and carry-over nasalisation)."""
    points, weights = [], []
    for phone, a, b in zip(plan.phones, edges[:-1], edges[1:]):
        r = min(0.3 * (b - a), 2 * _RAMP)
        points += [a + r, b - r]
        weights += [float(SPECS[phone].kind == "nasal")] * 2
    return gaussian_filter1d(np.interp(times, points, weights), sd, mode="nearest")


def _f0(
    rng: np.random.Generator, plan: UtterancePlan, speaker: Speaker, edges: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Hz at ``times`` (s, evenly spaced): declination over the speech, pitch accents, a slow random drift."""
    style = plan.style
    spoken = [i for i, p in enumerate(plan.phones) if p != SILENCE]
    t0, t1 = edges[spoken[0]], edges[spoken[-1] + 1]
    semitones = style.f0_shift + style.declination * (0.5 - np.clip((times - t0) / (t1 - t0), 0, 1))
    scale = speaker.f0_range * style.f0_range
    for mid, height in zip((edges[:-1] + edges[1:]) / 2, plan.accents):
        if height:
            semitones += scale * height * np.exp(-0.5 * ((times - mid) / _ACCENT_WIDTH) ** 2)
    drift = gaussian_filter1d(
        rng.standard_normal(len(times)), _DRIFT[0] / (times[1] - times[0]), mode="nearest"
    )
    semitones += scale * _DRIFT[1] * drift / max(drift.std(), 1e-9)
    return speaker.f0_hz * 2.0 ** (semitones / 12)


def _frame_phone_params(
    plan: UtterancePlan, frame_times: np.ndarray, sample_rate: int
) -> tuple[np.ndarray, ...]:
    """[M] nasal zero (Hz, reference tract) and frication place of each frame.

    Phones without their own take those of the nearest phone that has one, so a frame that straddles a boundary
    filters the noise of its neighbour with the neighbour's spectrum.
    """
    specs = [SPECS[p] for p in plan.phones]
    zero = _nearest(
        np.array([p in NASAL_ZERO_HZ for p in plan.phones]),
        np.array([NASAL_ZERO_HZ.get(p, 0.0) for p in plan.phones]),
    )
    place = _nearest(
        np.array([bool(s.place) for s in specs]),
        np.array([PLACE_NAMES.index(s.place) if s.place else 0 for s in specs]),
    )
    phone = np.searchsorted(plan.bounds, frame_times * sample_rate, side="right") - 1
    phone = np.clip(phone, 0, len(plan.phones) - 1)
    return zero[phone], place[phone]


def build_tracks(
    rng: np.random.Generator, plan: UtterancePlan, speaker: Speaker, sample_rate: int, frame_times: np.ndarray
) -> Tracks:
    """All control tracks; ``frame_times`` are the STFT frame centres, s (evenly spaced)."""
    edges = plan.bounds / sample_rate
    sd = _COARTICULATION / (frame_times[1] - frame_times[0])
    formants = _formants(plan, speaker, edges, frame_times, sd)
    nasal = _nasality(plan, edges, frame_times, sd)
    bandwidths = speaker.bandwidth_scale * (BANDWIDTH_BASE[:3] + BANDWIDTH_SLOPE * formants)
    bandwidths[:, 0] *= 1 + nasal  # the murmur's damped first resonance
    zero, place = _frame_phone_params(plan, frame_times, sample_rate)
    voice, aspiration, frication = _source_amplitudes(plan, sample_rate)
    f0 = _f0(rng, plan, speaker, edges, frame_times)
    return Tracks(
        voice=voice,
        aspiration=aspiration,
        frication=frication,
        f0=np.interp(np.arange(plan.num_samples) / sample_rate, frame_times, f0),
        formants=formants.astype(np.float32),
        bandwidths=bandwidths.astype(np.float32),
        nasal=nasal.astype(np.float32),
        nasal_zero=(zero * speaker.formant_scale * speaker.nasal_offset).astype(np.float32),
        place=place,
    )
