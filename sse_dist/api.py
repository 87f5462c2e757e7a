"""The Python API: a trained run as an object that embeds audio and scores pairs, for notebooks and scripts.

``load(RUN)`` reads the run's ``model.pt``, model card and calibration. ``embed`` runs the run's own frontend
(its recorded feature settings, energy VAD, mean normalisation) and extractor, exactly as ``sse-dist embed``
does on the same audio; ``score`` is the cosine score of the calibration (the dev set's mean subtracted), and
``threshold`` the dev set's EER threshold recorded by ``sse-dist score --run RUN`` (None before that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import EmbedConfig, FeatureConfig, ShardConfig, TrainConfig
from .embed.audio import file_features, recorded_features, waveform_features
from .embed.extract import Embedder, extractor_embedder, extractor_graph
from .preprocess.utterance import AudioError
from .score import calibration
from .shard.audio import BadAudio
from .train import card


@dataclass
class Model:
    run: str
    card: dict[str, Any] | None
    """The run's model card (``model_card.json``); None for a run trained before cards existed."""
    calibration: dict[str, Any] | None
    features: FeatureConfig
    """The feature settings the model was trained with."""
    embedder: Embedder

    @property
    def description(self) -> str:
        """One line naming the model: mode, objective, steps, data, commit, dev EER."""
        return card.describe(self.run, self.card)

    @property
    def threshold(self) -> float | None:
        """Scores above it are decided "same speaker" (the dev set's EER threshold); None if not calibrated."""
        return self.calibration["threshold"] if self.calibration else None

    def embed(self, waveform: Any, sample_rate: int) -> np.ndarray:
        """The embedding [E] of float audio in [-1, 1]: [samples] or [samples, channels], as soundfile reads it."""
        return self.embedder(*waveform_features(waveform, sample_rate, self.features))

    def embed_file(self, path: str) -> np.ndarray:
        """The embedding of an audio file (local or object store), read as ``sse-dist shard`` reads it."""
        try:
            return self.embedder(*file_features(path, ShardConfig(), self.features))
        except (BadAudio, AudioError) as e:
            raise ValueError(f"{path}: {e}") from None

    def score(self, a: np.ndarray, b: np.ndarray) -> float:
        """Cosine score of two embeddings, as the calibration trial list was scored."""
        return calibration.cosine(self.calibration, np.asarray(a), np.asarray(b))

    def same_speaker(self, score: float) -> bool | None:
        """The decision at :attr:`threshold`; None if the run has none."""
        return None if self.threshold is None else bool(score > self.threshold)

    def __repr__(self) -> str:
        return f"Model({self.description})"


def load(run: str, max_frames: int = EmbedConfig.max_frames) -> Model:
    """A trained run (its folder, local or ``s3://``, or its ``model.pt``)."""
    graph, info = extractor_graph(EmbedConfig(method="model", checkpoint=run), TrainConfig())
    return Model(
        run=card.run_folder(run),
        card=card.read(run),
        calibration=calibration.load(run),
        features=recorded_features(run, info["features"]),
        embedder=extractor_embedder(graph, max_frames),
    )
