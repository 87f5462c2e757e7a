"""Phones from a time alignment shipped with the corpus (the synthetic corpus's exact one, or any CTM).

The shard JSON holds ``"phones": [[start_s, dur_s, symbol], ...]``; each feature frame takes the phone whose
interval contains the frame's centre, and frames outside every interval are silence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...config import FeatureConfig
from ...phoneset import SILENCE, to_index
from ..features import frame_centre_seconds
from .base import PhoneError


class AlignmentSource:
    def __init__(self, features: FeatureConfig):
        self.features = features

    def __call__(self, meta: dict[str, Any], log_mel: torch.Tensor) -> np.ndarray:
        segments = meta.get("phones")
        if not segments:
            raise PhoneError("no time alignment in the sample's JSON")
        starts = np.array([float(s[0]) for s in segments])
        ends = starts + np.array([float(s[1]) for s in segments])
        ids = np.array([to_index(str(s[2])) for s in segments] + [to_index(SILENCE)], dtype=np.uint8)
        centres = frame_centre_seconds(np.arange(log_mel.shape[0]), self.features)
        pos = np.searchsorted(starts, centres, side="right") - 1
        inside = (pos >= 0) & (centres < ends[np.clip(pos, 0, None)])
        return ids[np.where(inside, pos, len(segments))]
