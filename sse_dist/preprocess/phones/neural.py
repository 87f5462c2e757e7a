"""Soft phone posteriors from the project's own frame classifier (``sse-dist train --mode phones``).

The classifier is trained on the recognizer's alignments and then labels the whole corpus from the fbank field:
a few convolutions per frame instead of a decoder search, batched across utterances, on a GPU where the actor
has one. It refuses features other than those it was trained on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from ... import storage
from ...config import FeatureConfig, ModelConfig, PhoneConfig, PreprocessConfig, from_dict
from ...frontend import apply_cmn
from ...models.export import PHONE_EXPORT_FORMAT, export_url, load_export
from ...models.xvector import PhoneClassifier
from ...shard.fields import CLASSIFIED, FBANK
from .base import Labels, PhoneError, PhoneSource, Utterance, check_features


@functools.lru_cache(maxsize=4)
def _load(url: str) -> dict[str, Any]:
    return load_export(url, PHONE_EXPORT_FORMAT)


def _checked(phones: PhoneConfig, features: FeatureConfig) -> dict[str, Any]:
    blob = _load(phones.model)
    check_features("preprocess.phones.model", phones.model, blob["features"], features)
    return blob


class NeuralSource(PhoneSource):
    reads = (FBANK,)
    wants_gpu = True

    def __init__(self, phones: PhoneConfig, features: FeatureConfig):
        super().__init__(phones, features)
        blob = _checked(phones, features)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = PhoneClassifier(from_dict(ModelConfig, blob["model"]), blob["feat_dim"], blob["num_classes"])
        model.load_state_dict(blob["state_dict"])
        self.model = model.eval().to(self.device)
        self.cmn_window = int(blob["data"]["cmn_window"])

    @classmethod
    def prepare(cls, cfg: PreprocessConfig, connect: Callable[[], None]) -> None:
        _checked(cfg.phones, cfg.features)  # in the driver, before any actor starts

    @classmethod
    def num_classes(cls, phones: PhoneConfig) -> int:
        return int(_load(phones.model)["num_classes"])

    @classmethod
    def identity(cls, phones: PhoneConfig) -> dict[str, Any]:
        return {"model_sha256": storage.sha256(export_url(phones.model))}

    def label_batch(self, utts: list[Utterance]) -> list[Labels | PhoneError]:
        feats = [apply_cmn(torch.from_numpy(u.log_mel), self.cmn_window).to(self.device) for u in utts]
        return [Labels(p.float().cpu().numpy(), CLASSIFIED) for p in self.model.posteriors(feats)]
