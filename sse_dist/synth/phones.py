"""Acoustic targets of the phone classes, for a reference adult male vocal tract (17.5 cm).

Formant targets are Peterson & Barney / Hillenbrand averages; consonants carry place "loci" so that the
neighbouring vowels get the formant transitions that cue place. Every frequency here is scaled per speaker by
the vocal-tract-length factor and personal offsets (``speakers.py``), and every duration by speaking rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..phoneset import PHONES, SILENCE

NUM_FORMANTS = 6
# F4-F6 barely move with phonetic content (Klatt's defaults); they are mostly speaker (tract-length) cues.
UPPER_FORMANTS = (3300.0, 3850.0, 4950.0)
# Bandwidth grows with formant frequency (wall losses); the constant part is per formant.
BANDWIDTH_BASE = np.array([40.0, 50.0, 70.0, 100.0, 140.0, 200.0])
BANDWIDTH_SLOPE = 0.06

Formants = tuple[float, float, float]


@dataclass(frozen=True)
class PhoneSpec:
    kind: str
    """silence, vowel, approximant, nasal, fricative, aspirate, stop or affricate."""
    duration: float
    """Mean duration at speaking rate 1, seconds."""
    onset: Formants | None
    """F1-F3 target at the start (or the consonant's locus); None takes the neighbours' values."""
    offset: Formants | None
    """F1-F3 target at the end (differs from ``onset`` for diphthongs)."""
    voiced: bool = True
    place: str = ""
    """Key of :data:`PLACES`: the noise spectrum of frication or of the stop burst."""


@dataclass(frozen=True)
class Place:
    """Frication noise spectrum: a peak (scaled with the tract), a rise below it and a fall above it, dB/octave."""

    peak_hz: float
    rise_db: float
    fall_db: float
    level_db: float


PLACES: dict[str, Place] = {
    "labiodental": Place(2500.0, 2.0, 1.0, -18.0),
    "dental": Place(5000.0, 3.0, 3.0, -18.0),
    "alveolar": Place(5500.0, 18.0, 6.0, 0.0),
    "postalveolar": Place(2800.0, 18.0, 5.0, 3.0),
    "bilabial": Place(900.0, 3.0, 6.0, -6.0),
    "velar": Place(1900.0, 15.0, 10.0, -3.0),
}
PLACE_NAMES = tuple(PLACES)

# Nasal murmur: the pharynx+nasal cavity resonance and the zero of the closed oral branch, by place.
NASAL_POLE_HZ = 270.0
NASAL_ZERO_HZ = {"M": 1100.0, "N": 1700.0, "NG": 3000.0}


def _vowel(duration: float, onset: Formants, offset: Formants | None = None) -> PhoneSpec:
    return PhoneSpec("vowel", duration, onset, offset or onset)


def _consonant(
    kind: str, duration: float, locus: Formants | None, voiced: bool, place: str = ""
) -> PhoneSpec:
    return PhoneSpec(kind, duration, locus, locus, voiced, place)


_LABIAL = (250.0, 800.0, 2200.0)
_DENTAL = (300.0, 1400.0, 2600.0)
_ALVEOLAR = (250.0, 1700.0, 2600.0)
_POSTALVEOLAR = (270.0, 1900.0, 2500.0)
_VELAR = (250.0, 1900.0, 2200.0)

SPECS: dict[str, PhoneSpec] = {
    SILENCE: PhoneSpec("silence", 0.0, None, None, voiced=False),  # pauses and edges are drawn in plan.py
    "IY": _vowel(0.110, (270, 2290, 3010)),
    "IH": _vowel(0.075, (390, 1990, 2550)),
    "EH": _vowel(0.085, (530, 1840, 2480)),
    "AE": _vowel(0.120, (660, 1720, 2410)),
    "AA": _vowel(0.120, (730, 1090, 2440)),
    "AO": _vowel(0.115, (570, 840, 2410)),
    "UH": _vowel(0.075, (440, 1020, 2240)),
    "UW": _vowel(0.105, (300, 870, 2240)),
    "AH": _vowel(0.070, (640, 1190, 2390)),
    "ER": _vowel(0.105, (490, 1350, 1690)),
    "EY": _vowel(0.140, (480, 1900, 2500), (330, 2200, 2800)),
    "AY": _vowel(0.160, (750, 1150, 2450), (400, 2000, 2600)),
    "AW": _vowel(0.160, (750, 1200, 2450), (450, 1000, 2300)),
    "OY": _vowel(0.170, (550, 850, 2400), (400, 1900, 2550)),
    "OW": _vowel(0.140, (530, 900, 2400), (400, 800, 2300)),
    "L": _consonant("approximant", 0.060, (360, 1000, 2700), True),
    "R": _consonant("approximant", 0.060, (310, 1060, 1380), True),
    "W": _consonant("approximant", 0.055, (300, 610, 2200), True),
    "Y": _consonant("approximant", 0.055, (260, 2070, 3020), True),
    "M": _consonant("nasal", 0.065, (250, 1100, 2200), True),
    "N": _consonant("nasal", 0.060, (250, 1600, 2600), True),
    "NG": _consonant("nasal", 0.070, (250, 2000, 2700), True),
    "F": _consonant("fricative", 0.095, _LABIAL, False, "labiodental"),
    "TH": _consonant("fricative", 0.090, _DENTAL, False, "dental"),
    "S": _consonant("fricative", 0.110, _ALVEOLAR, False, "alveolar"),
    "SH": _consonant("fricative", 0.115, _POSTALVEOLAR, False, "postalveolar"),
    "V": _consonant("fricative", 0.060, _LABIAL, True, "labiodental"),
    "DH": _consonant("fricative", 0.045, _DENTAL, True, "dental"),
    "Z": _consonant("fricative", 0.080, _ALVEOLAR, True, "alveolar"),
    "ZH": _consonant("fricative", 0.080, _POSTALVEOLAR, True, "postalveolar"),
    "HH": _consonant("aspirate", 0.060, None, False),
    "P": _consonant("stop", 0.085, _LABIAL, False, "bilabial"),
    "T": _consonant("stop", 0.080, _ALVEOLAR, False, "alveolar"),
    "K": _consonant("stop", 0.090, _VELAR, False, "velar"),
    "B": _consonant("stop", 0.065, _LABIAL, True, "bilabial"),
    "D": _consonant("stop", 0.060, _ALVEOLAR, True, "alveolar"),
    "G": _consonant("stop", 0.070, _VELAR, True, "velar"),
    "CH": _consonant("affricate", 0.120, _POSTALVEOLAR, False, "postalveolar"),
    "JH": _consonant("affricate", 0.100, _POSTALVEOLAR, True, "postalveolar"),
}
assert set(SPECS) == set(PHONES), "every phone class needs acoustic targets"
