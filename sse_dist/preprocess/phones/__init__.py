"""Phone sources: each turns an utterance into frame-synchronous phone labels on the feature frame grid.

Registering a new recognizer is adding its class (constructed with the :class:`FeatureConfig`) to ``SOURCES``
as ``"module:Class"``; sources are imported only when used, so validating a config stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .base import PhoneError, PhoneSource

if TYPE_CHECKING:
    from ...config import FeatureConfig

SOURCES: dict[str, str] = {"alignment": "sse_dist.preprocess.phones.alignment:AlignmentSource"}


def make_source(name: str, features: FeatureConfig) -> PhoneSource:
    module, cls = SOURCES[name].split(":")
    return getattr(importlib.import_module(module), cls)(features)


__all__ = ["SOURCES", "PhoneError", "PhoneSource", "make_source"]
