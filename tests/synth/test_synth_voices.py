"""Speakers differ where voices do: pitch from the glottal source, formants from the vocal-tract length."""

from __future__ import annotations

import dataclasses

import numpy as np
import soundfile as sf
from synth_helpers import TINY, read_ctm, read_table

from sse_dist.config import SynthConfig
from sse_dist.synth import run
from sse_dist.synth.phones import SPECS
from sse_dist.synth.plan import plan_utterance
from sse_dist.synth.speakers import sample_speaker, sample_style
from sse_dist.synth.synthesize import synthesize


def _vowels(segments: list[tuple[float, float, str]], sample_rate: int) -> list[slice]:
    return [
        slice(int(s * sample_rate), int((s + d) * sample_rate))
        for s, d, p in segments
        if SPECS[p].kind == "vowel" and d >= 0.05
    ]


def _f0(audio: np.ndarray, vowels: list[slice], sample_rate: int) -> float:
    """Median over vowels of the autocorrelation peak in 60-400 Hz."""
    lo, hi = sample_rate // 400, sample_rate // 60
    estimates = []
    for vowel in vowels:
        x = audio[vowel] - audio[vowel].mean()
        ac = np.correlate(x, x, "full")[len(x) - 1 :]
        estimates.append(sample_rate / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(estimates))


def _centroid(audio: np.ndarray, vowels: list[slice], sample_rate: int) -> float:
    """Spectral centroid of the vowels below 5 kHz (where the formants are), Hz."""
    power = sum(np.abs(np.fft.rfft(audio[v], n=8192)) ** 2 for v in vowels)
    freqs = np.fft.rfftfreq(8192, 1 / sample_rate)
    band = freqs < 5000
    return float((freqs[band] * power[band]).sum() / power[band].sum())


def test_men_are_lower_pitched_than_women(tmp_path):
    """Clean audio (no noise, flat channel) of two men and two women: the pitch estimates separate them."""
    clean = {**TINY, "num_speakers": 4, "snr_db_min": 80.0, "snr_db_max": 80.0, "channel_db": 0.0}
    run(SynthConfig(output=str(tmp_path), workers=1, **clean))
    pitch: dict[str, list[float]] = {"m": [], "f": []}
    for split in ("train", "test"):
        data = tmp_path / split
        wav, utt2spk, gender = (read_table(data / n) for n in ("wav.scp", "utt2spk", "spk2gender"))
        for utt, segments in read_ctm(data / "phones.ctm").items():
            audio, rate = sf.read(str(data / wav[utt][0]))
            pitch[gender[utt2spk[utt][0]][0]].append(_f0(audio, _vowels(segments, rate), rate))
    assert len(pitch["m"]) == len(pitch["f"]) == 6
    assert max(pitch["m"]) * 1.2 < min(pitch["f"])
    assert min(pitch["m"]) > 70 and max(pitch["f"]) < 350


def test_pitch_follows_the_speaker_and_formants_follow_tract_length():
    """The same utterance by one speaker, by the speaker with double F0, and with a 25% shorter tract."""
    rng = np.random.default_rng(0)
    speaker = sample_speaker(rng, 0)
    style = dataclasses.replace(sample_style(rng, 0.0, (80.0, 80.0)), f0_shift=0.0)
    plan = plan_utterance(rng, speaker, style, 3.0, 16000)
    vowels = _vowels(list(zip(plan.bounds[:-1] / 16000, np.diff(plan.bounds) / 16000, plan.phones)), 16000)
    variants = {
        "base": speaker,
        "high": dataclasses.replace(speaker, f0_hz=2 * speaker.f0_hz),
        "short": dataclasses.replace(speaker, formant_scale=1.25 * speaker.formant_scale),
    }
    audio = {k: synthesize(np.random.default_rng(1), plan, s, 16000) for k, s in variants.items()}
    f0 = {k: _f0(a, vowels, 16000) for k, a in audio.items()}
    centroid = {k: _centroid(a, vowels, 16000) for k, a in audio.items()}
    assert abs(np.log2(f0["base"] / speaker.f0_hz)) < 0.3  # within ~3.5 semitones: accents and declination
    assert 1.8 < f0["high"] / f0["base"] < 2.2
    assert 0.9 < f0["short"] / f0["base"] < 1.1
    assert 1.12 < centroid["short"] / centroid["base"] < 1.4
