"""The phone-source interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch


class PhoneError(ValueError):
    """This utterance gets no phones from this source (the reason is counted in the shard summary)."""


class PhoneSource(Protocol):
    """Called once per utterance with the sample's JSON metadata and its log-mel filterbank [T, D]; returns
    hard labels (uint8 [T], indices into :mod:`sse_dist.phoneset`) or soft posteriors (float [T, NUM_PHONES])."""

    def __call__(self, meta: dict[str, Any], log_mel: torch.Tensor) -> np.ndarray: ...
