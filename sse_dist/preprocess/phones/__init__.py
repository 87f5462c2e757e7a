"""Phone sources: each turns an utterance into frame-synchronous labels on the feature frame grid.

Registering a new recognizer is adding its :class:`PhoneSource` subclass to ``SOURCES`` as ``"module:Class"``
and its name to ``config.schema.PhoneSourceName`` (a test holds the two equal); sources are imported only
when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .base import PhoneError, PhoneSource

if TYPE_CHECKING:
    from ...config import FeatureConfig, PhoneConfig

SOURCES: dict[str, str] = {
    "alignment": "sse_dist.preprocess.phones.alignment:AlignmentSource",
    "pocketsphinx": "sse_dist.preprocess.phones.sphinx:PocketsphinxSource",
    "neural": "sse_dist.preprocess.phones.neural:NeuralSource",
    "kmeans": "sse_dist.preprocess.phones.kmeans:KMeansSource",
}


def source_class(name: str) -> type[PhoneSource]:
    module, cls = SOURCES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_source(phones: PhoneConfig, features: FeatureConfig) -> PhoneSource:
    return source_class(phones.source)(phones, features)


__all__ = ["SOURCES", "PhoneError", "PhoneSource", "make_source", "source_class"]
