"""The phone-source interface: an utterance in, frame-synchronous labels and how they were obtained out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ...phoneset import NUM_PHONES

if TYPE_CHECKING:
    from ...config import FeatureConfig, PhoneConfig, PreprocessConfig


def check_features(setting: str, url: str, recorded: dict[str, Any], features: FeatureConfig) -> None:
    """Refuse, in one line, a model trained on other features than the stage computes."""
    if recorded != asdict(features):
        raise ValueError(
            f"{setting}: {url} was trained on other features ({recorded}) than preprocess.features "
            f"({asdict(features)})"
        )


class PhoneError(ValueError):
    """This utterance gets no phones from this source (the reason is counted in the shard summary)."""


@dataclass
class Utterance:
    key: str
    meta: dict[str, Any]
    """The sample's JSON: the audio shard's (``id``, ``text``, ``phones``...) when the source reads audio, else
    the fbank shard's."""
    log_mel: np.ndarray
    """Raw log-mel filterbank, float32 [T, D]; its T is the frame count the labels must have."""
    vad: np.ndarray
    """Energy VAD, bool [T]."""
    sample: dict[str, Any]
    """Every joined member (``flac``/``wav`` bytes when the source reads audio)."""


@dataclass
class Labels:
    values: np.ndarray
    """uint8 [T] class indices, or float [T, num_classes] posteriors."""
    how: str
    """One of the outcomes above."""
    note: str = ""
    """Why a fallback happened."""


class PhoneSource:
    """Constructed once per worker (a Ray actor) with the phone and feature settings, then called per batch."""

    reads: ClassVar[tuple[str, ...]] = ("fbank",)
    """Fields joined for the source, the first one streamed (``audio`` first when it needs audio or text)."""
    wants_gpu: ClassVar[bool] = False
    """Placed on a GPU when the cluster has them."""

    def __init__(self, phones: PhoneConfig, features: FeatureConfig):
        self.phones = phones
        self.features = features

    @classmethod
    def num_classes(cls, phones: PhoneConfig) -> int:
        return NUM_PHONES

    @classmethod
    def prepare(cls, cfg: PreprocessConfig, connect: Callable[[], None]) -> None:
        """Run once by the driver before labelling (e.g. fit a model on a sample of the shards); ``connect``
        joins or starts Ray for it."""

    @classmethod
    def identity(cls, phones: PhoneConfig) -> dict[str, Any]:
        """What the labels depend on beyond the config (model checksum, recognizer version): part of the
        field's fingerprint, so a new model relabels the corpus."""
        return {}

    def label(self, utt: Utterance) -> Labels:
        raise NotImplementedError

    def label_batch(self, utts: list[Utterance]) -> list[Labels | PhoneError]:
        out: list[Labels | PhoneError] = []
        for utt in utts:
            try:
                out.append(self.label(utt))
            except PhoneError as e:
                out.append(e)
        return out
