"""Phones from a time alignment shipped with the corpus (the synthetic corpus's exact one, or any CTM).

The shard JSON holds ``"phones": [[start_s, dur_s, symbol], ...]``; each feature frame takes the phone whose
interval contains the frame's centre, and frames outside every interval are silence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...config import FeatureConfig
from ...frontend import frame_centre_seconds
from ...phoneset import SILENCE, to_index
from ...shard.fields import ALIGNED
from .base import Labels, PhoneError, PhoneSource, Utterance


def on_frame_grid(
    starts: Sequence[float], ends: Sequence[float], symbols: Sequence[str], frames: int, cfg: FeatureConfig
) -> np.ndarray:
    """uint8 [frames]: the phone of the interval (sorted by start) holding each frame's centre, else silence."""
    starts, ends = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    ids = np.array([to_index(s) for s in symbols] + [to_index(SILENCE)], dtype=np.uint8)
    centres = frame_centre_seconds(np.arange(frames), cfg)
    pos = np.searchsorted(starts, centres, side="right") - 1
    inside = (pos >= 0) & (centres < ends[np.clip(pos, 0, None)]) if len(starts) else pos >= 0
    return ids[np.where(inside, pos, len(symbols))]


class AlignmentSource(PhoneSource):
    reads = ("audio", "fbank")

    def label(self, utt: Utterance) -> Labels:
        segments = utt.meta.get("phones")
        if not segments:
            raise PhoneError("no time alignment in the sample's JSON")
        starts = [float(s[0]) for s in segments]
        ends = [float(s[0]) + float(s[1]) for s in segments]
        values = on_frame_grid(starts, ends, [str(s[2]) for s in segments], len(utt.log_mel), self.features)
        return Labels(values, ALIGNED)
