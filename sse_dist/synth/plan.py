"""What an utterance says and when: words, phones with sample-exact boundaries, pauses and pitch accents."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..phoneset import SILENCE
from .lexicon import LEXICON, sample_word
from .phones import SPECS
from .speakers import Speaker, UtteranceStyle

_DURATION_SD = 0.25  # log-sd of a phone's duration around its class mean (context, stress, chance)
_MIN_PHONE = 0.03  # s: keeps every phone a few feature frames long before the fit to the target duration
_PAUSE_PROB = 0.15
_PAUSE = (0.08, 0.35)
_EDGE = (0.05, 0.25)  # leading / trailing silence, s
_ACCENT_PROB = 0.35
_ACCENT_ST = (1.0, 3.5)


@dataclass(frozen=True)
class UtterancePlan:
    words: tuple[str, ...]
    phones: tuple[str, ...]
    bounds: np.ndarray
    """[len(phones) + 1] phone boundaries in samples, from 0 to the utterance length."""
    accents: np.ndarray
    """[len(phones)] height (semitones) of a pitch accent centred on the phone, 0 for none."""
    style: UtteranceStyle

    @property
    def num_samples(self) -> int:
        return int(self.bounds[-1])


def _word(
    rng: np.random.Generator, word: str, rate: float, may_pause: bool
) -> tuple[list[str], list[float], list[float]]:
    """Phones, durations (s) and accents of one word, with a pause before it if one is drawn."""
    phones = list(LEXICON[word])
    durations = [
        max(SPECS[p].duration * np.exp(_DURATION_SD * rng.standard_normal()), _MIN_PHONE) / rate
        for p in phones
    ]
    accents = [0.0] * len(phones)
    if rng.random() < _ACCENT_PROB:
        first_vowel = next(i for i, p in enumerate(phones) if SPECS[p].kind == "vowel")
        accents[first_vowel] = rng.uniform(*_ACCENT_ST)
    if may_pause and rng.random() < _PAUSE_PROB:
        return [SILENCE, *phones], [rng.uniform(*_PAUSE), *durations], [0.0, *accents]
    return phones, durations, accents


def plan_utterance(
    rng: np.random.Generator,
    speaker: Speaker,
    style: UtteranceStyle,
    duration: float,
    sample_rate: int,
) -> UtterancePlan:
    """Draw words until the speech best fills ``duration`` less the edge silences, then stretch it to fit."""
    lead, trail = np.minimum(rng.uniform(*_EDGE, size=2), 0.15 * duration)
    budget = duration - lead - trail
    rate = speaker.rate * style.rate
    words: list[str] = []
    phones: list[str] = []
    durations: list[float] = []
    accents: list[float] = []
    while sum(durations) < budget:
        word = sample_word(rng)
        w_phones, w_durations, w_accents = _word(rng, word, rate, may_pause=bool(words))
        total = sum(durations)
        if words and total + sum(w_durations) - budget > budget - total:
            break  # stopping short is closer to the target than taking this word
        words.append(word)
        phones += w_phones
        durations += w_durations
        accents += w_accents
    times = lead + np.concatenate([[0.0], np.cumsum(durations) * budget / sum(durations)])
    seconds = np.concatenate([[0.0], times, [duration]])
    return UtterancePlan(
        words=tuple(words),
        phones=(SILENCE, *phones, SILENCE),
        bounds=np.round(seconds * sample_rate).astype(np.int64),
        accents=np.array([0.0, *accents, 0.0]),
        style=style,
    )
