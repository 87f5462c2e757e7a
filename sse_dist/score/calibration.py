"""The decision threshold stored with a model: calibrated on a scored dev trial list, kept in the run folder.

``sse-dist score --run RUN`` records in ``RUN/calibration.json`` the threshold at which that trial list's miss
and false-alarm rates are equal (its EER operating point) together with the mean the cosine backend subtracted
from the embeddings, and adds the EER to the run's model card. :func:`cosine` then scores any pair exactly as
the trial list was scored, so ``sse-dist verify`` and ``sse_dist.load`` decide "same speaker" above the
threshold at the dev set's error rates.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np

from .. import storage
from ..config import ScoreConfig
from ..train import card
from .backends import length_normalise
from .metrics import eer_threshold

CALIBRATION = "calibration.json"


def record(
    cfg: ScoreConfig,
    vectors: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray],
    scores: np.ndarray,
    labels: np.ndarray,
    eer_percent: float,
) -> dict[str, Any]:
    """Store the threshold of these trials (``rows``: their enrollment and test rows of ``vectors``) in
    ``cfg.run``; returns what the score summary reports about it."""
    run = card.run_folder(cfg.run)
    model_card = card.read(run)
    if model_card is None:
        raise FileNotFoundError(f"score.run: {run} has no {card.CARD_JSON} (not a training run folder?)")
    if vectors.shape[1] != model_card["embed_dim"]:
        raise ValueError(
            f"score.run: {run} makes {model_card['embed_dim']}-dim embeddings, {cfg.embeddings} holds "
            f"{vectors.shape[1]}-dim ones: they are not this model's"
        )
    dim = vectors.shape[1]
    used = np.unique(np.concatenate(rows))  # each utterance once, as the cosine backend's mean counts them
    mean = vectors[used].astype(np.float64).mean(axis=0) if cfg.mean_subtraction else np.zeros(dim)
    dev = {
        "eer_percent": eer_percent,
        "threshold": eer_threshold(scores, labels),
        "backend": "cosine" + (" (mean-subtracted)" if cfg.mean_subtraction else ""),
        "trials": len(labels),
        "trial_list": cfg.trials,
        "embeddings": cfg.embeddings,
        "scored": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    storage.write_json(storage.join(run, CALIBRATION), {**dev, "mean": mean.tolist()})
    card.record_dev(run, dev)
    return {"run": run, "threshold": dev["threshold"]}


def load(run: str) -> dict[str, Any] | None:
    """A run's calibration, or None where it has not been scored with ``score.run``."""
    url = storage.join(card.run_folder(run), CALIBRATION)
    return storage.read_json(url) if storage.exists(url) else None


def cosine(calibration: dict[str, Any] | None, a: np.ndarray, b: np.ndarray) -> float:
    """The score of one pair as the calibrated trial list was scored (plain cosine without a calibration)."""
    mean = np.asarray(calibration["mean"]) if calibration else 0.0
    x = length_normalise(np.stack([a, b]).astype(np.float64) - mean)
    return float(x[0] @ x[1])
