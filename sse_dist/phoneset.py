"""The fixed phone inventory every phone source maps to: silence + the 39 CMUdict (ARPAbet) phones.

Index 0 is silence. Stress markers are dropped and the TIMIT-style variants folded, so any recognizer's output,
a lexicon or the synthetic corpus can be mapped onto the same 40 classes (``to_index`` is total).
"""

from __future__ import annotations

SILENCE = "SIL"
PHONES: tuple[str, ...] = (
    SILENCE,
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY",
    "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y",
    "Z", "ZH",
)  # fmt: skip
NUM_PHONES = len(PHONES)
INDEX = {p: i for i, p in enumerate(PHONES)}

# TIMIT/Buckeye symbols that CMUdict folds into its 39 phones; everything unknown is treated as silence/noise.
_FOLD = {
    "AX": "AH", "AXR": "ER", "AXH": "AH", "IX": "IH", "UX": "UW", "EL": "L", "EM": "M", "EN": "N", "ENG": "NG",
    "NX": "N", "DX": "T", "Q": "T", "HV": "HH", "TS": "T",
}  # fmt: skip


def normalise(symbol: str) -> str:
    """Map one phone symbol (any case, with or without stress digit or position suffix) to the inventory."""
    s = symbol.strip().upper()
    s = s.split("_", 1)[0].rstrip("012")  # "AH0", "ah_B" -> "AH"
    s = _FOLD.get(s, s)
    return s if s in INDEX else SILENCE


def to_index(symbol: str) -> int:
    return INDEX[normalise(symbol)]
