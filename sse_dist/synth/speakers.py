"""Random speakers (voice parameters fixed for life) and per-utterance styles (what varies within a speaker).

Population spreads follow published adult/child ranges: F0 (Titze), vocal-tract length via a formant scale
factor (Fant's ~17% female, ~33% child offset), glottal open quotient, jitter and shimmer. The spreads overlap
within a voice type, so many speakers are close neighbours, as in a real population.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..phoneset import NUM_PHONES
from .phones import NUM_FORMANTS, PLACE_NAMES

NOISE_KINDS = ("white", "pink", "babble")

# voice type: (Kaldi gender or None for a coin flip, median F0 Hz, log-sd, formant scale)
_VOICES = {
    "male": ("m", 115.0, 0.15, 1.0),
    "female": ("f", 205.0, 0.12, 1.16),
    "child": (None, 265.0, 0.10, 1.33),
}
# Voice types are dealt out in this cycle (45% men, 45% women, 10% children) rather than drawn, so that any
# run of consecutive speakers, such as the test set, is balanced.
_VOICE_CYCLE = ("male", "female") * 4 + ("male", "child") + ("female", "male") * 4 + ("female", "child")


@dataclass(frozen=True)
class Speaker:
    id: str
    gender: str
    """Kaldi gender, m or f (children get either)."""
    voice: str
    """male, female or child: the population the voice was drawn from."""
    f0_hz: float
    """Median F0 over the speaker's utterances, Hz."""
    f0_range: float
    """Scale of the pitch accents and of the slow F0 drift."""
    formant_scale: float
    """Inverse vocal-tract length relative to 17.5 cm: every formant and frication peak scales with it."""
    formant_offsets: np.ndarray
    """[NUM_FORMANTS] personal multiplicative offsets (tract shape beyond its length)."""
    phone_offsets: np.ndarray
    """[NUM_PHONES, 3] multiplicative offsets of each phone's F1-F3 targets: the speaker's accent."""
    bandwidth_scale: float
    """Formant bandwidths relative to the reference (tract wall losses, glottal damping)."""
    open_quotient: float
    """Open phase as a fraction of the glottal period: higher is breathier with a stronger first harmonic."""
    speed_quotient: float
    """Fraction of the open phase spent opening (the rest closing)."""
    tilt_hz: float
    """Corner of the glottal return-phase low-pass: lower is a darker, softer voice."""
    breathiness_db: float
    """Level of the glottal aspiration noise relative to the voiced source."""
    jitter: float
    """Relative standard deviation of consecutive glottal periods."""
    shimmer: float
    """Relative standard deviation of consecutive glottal pulse amplitudes."""
    rate: float
    """Speaking rate: phone durations are divided by it."""
    place_offsets: np.ndarray
    """[len(PLACE_NAMES)] multiplicative offsets of the frication peaks."""
    nasal_offset: float
    """Multiplicative offset of the nasal anti-resonances."""


@dataclass(frozen=True)
class UtteranceStyle:
    f0_shift: float
    """Semitones added to the speaker's F0 for this utterance."""
    f0_range: float
    """Multiplies the speaker's ``f0_range``: livelier or flatter intonation."""
    declination: float
    """Semitones the F0 baseline falls over the utterance."""
    effort: float
    """Vocal effort, standard units: more effort is a brighter source (lower OQ, higher tilt corner)."""
    rate: float
    """Multiplies the speaker's speaking rate."""
    channel_db: np.ndarray
    """Cosine-series coefficients (dB) of the channel equaliser over the mel axis."""
    noise: str
    """Background noise kind, one of NOISE_KINDS."""
    snr_db: float
    """Active speech level over noise level, dB."""
    level_db: float
    """RMS of the active speech, dB re full scale."""
    rt60_s: float = 0.0
    """Reverberation time of the room, seconds (0: dry)."""
    drr_db: float = 0.0
    """Direct-to-reverberant energy ratio of the room's impulse response, dB."""


def sample_speaker(rng: np.random.Generator, index: int) -> Speaker:
    voice = _VOICE_CYCLE[index % len(_VOICE_CYCLE)]
    gender, f0_median, f0_sd, scale = _VOICES[voice]
    high = voice != "male"
    return Speaker(
        id=f"s{index:04d}",
        gender=gender or ("m" if rng.random() < 0.5 else "f"),
        voice=voice,
        f0_hz=float(f0_median * np.exp(f0_sd * rng.standard_normal())),
        f0_range=float(rng.uniform(0.5, 1.6)),
        formant_scale=float(scale * np.exp(0.07 * rng.standard_normal())),
        formant_offsets=np.exp(0.06 * rng.standard_normal(NUM_FORMANTS)),
        phone_offsets=np.exp(0.07 * rng.standard_normal((NUM_PHONES, 3))),
        bandwidth_scale=float(np.exp(0.2 * rng.standard_normal())),
        open_quotient=float(rng.uniform(0.55, 0.8) if high else rng.uniform(0.4, 0.7)),
        speed_quotient=float(rng.uniform(0.6, 0.8)),
        tilt_hz=float(4000.0 * np.exp(0.5 * rng.standard_normal())),
        breathiness_db=float(rng.uniform(-36.0, -18.0) + (4.0 if high else 0.0)),
        jitter=float(rng.uniform(0.003, 0.02)),
        shimmer=float(rng.uniform(0.02, 0.10)),
        rate=float(np.exp(0.12 * rng.standard_normal())),
        place_offsets=np.exp(0.08 * rng.standard_normal(len(PLACE_NAMES))),
        nasal_offset=float(np.exp(0.08 * rng.standard_normal())),
    )


def sample_style(rng: np.random.Generator, channel_db: float, snr_db: tuple[float, float]) -> UtteranceStyle:
    return UtteranceStyle(
        f0_shift=float(0.8 * rng.standard_normal()),
        f0_range=float(np.exp(0.2 * rng.standard_normal())),
        declination=float(rng.uniform(1.0, 4.0)),
        effort=float(rng.standard_normal()),
        rate=float(np.exp(0.06 * rng.standard_normal())),
        channel_db=_channel(rng, channel_db),
        noise=NOISE_KINDS[rng.integers(len(NOISE_KINDS))],
        # the best of three uniform draws: most recordings are fairly clean (median ~80% of the way up the
        # range) and a tail is noisy; uniform in dB would make the noise level, not the voice, dominate
        snr_db=float(rng.uniform(*snr_db, size=3).max()),
        level_db=float(rng.uniform(-32.0, -20.0)),
    )


@dataclass(frozen=True)
class Session:
    """What one recording session fixes for all its utterances: device, room and background."""

    channel_db: np.ndarray
    """Cosine-series coefficients (dB) of the device's equaliser."""
    noise: str
    """Background noise kind."""
    snr_db: float
    """The session's noise level; each utterance is within 3 dB of it."""
    rt60_s: float
    """Reverberation time of the room, seconds (0: dry)."""
    drr_db: float
    """Direct-to-reverberant ratio, dB (talker to microphone distance)."""


def sample_session(
    rng: np.random.Generator, channel_db: float, snr_db: tuple[float, float], rt60_max: float
) -> Session:
    rt60 = float(rng.uniform(0.15, rt60_max)) if rt60_max > 0 else 0.0
    return Session(
        channel_db=_channel(rng, channel_db),
        noise=NOISE_KINDS[rng.integers(len(NOISE_KINDS))],
        snr_db=float(rng.uniform(*snr_db, size=3).max()),  # as an utterance's: mostly fairly clean
        rt60_s=rt60,
        drr_db=float(rng.uniform(0.0, 12.0)),
    )


def in_session(rng: np.random.Generator, style: UtteranceStyle, session: Session) -> UtteranceStyle:
    """The utterance's own voice variation, recorded in ``session``."""
    return dataclasses.replace(
        style, channel_db=session.channel_db, noise=session.noise,
        snr_db=session.snr_db + float(rng.uniform(-3.0, 3.0)), rt60_s=session.rt60_s, drr_db=session.drr_db,
    )  # fmt: skip


def _channel(rng: np.random.Generator, peak_db: float, terms: int = 6) -> np.ndarray:
    """Coefficients of a smooth random EQ whose largest excursion is up to ``peak_db`` (sampled on a grid)."""
    coefs = rng.standard_normal(terms) / np.sqrt(np.arange(1, terms + 1))
    grid = np.cos(np.pi * np.outer(np.linspace(0, 1, 64), np.arange(1, terms + 1))) @ coefs
    return coefs * peak_db * rng.uniform(0.4, 1.0) / max(np.abs(grid).max(), 1e-9)
