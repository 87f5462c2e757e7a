"""Phone sources: each turns an utterance into frame-synchronous phone labels on the feature frame grid.

Registering a new recognizer is adding a class (constructed with the :class:`FeatureConfig`) to ``SOURCES``.
"""

from __future__ import annotations

from ...config import FeatureConfig
from .alignment import AlignmentSource
from .base import PhoneError, PhoneSource

SOURCES: dict[str, type] = {"alignment": AlignmentSource}


def make_source(name: str, features: FeatureConfig) -> PhoneSource:
    return SOURCES[name](features)


__all__ = ["SOURCES", "PhoneError", "PhoneSource", "make_source"]
