"""The ``score`` stage: embeddings + trial list -> backend scores (optionally AS-normed), EER/minDCF JSON and a
DET plot."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .. import storage
from ..config import ConfigError, ScoreConfig
from .backends import Backend, make_backend
from .calibration import record
from .embeddings import Embeddings, load_embeddings
from .metrics import det_curve, eer, min_dcf
from .normalise import asnorm, speaker_means, top_stats
from .plot import det_png
from .trials import Trials, read_trials, resolve

log = logging.getLogger(__name__)

# Operating points reported whatever p_target is, so runs configured differently stay comparable
# (0.01: VoxCeleb / SRE16-18; 0.001: SRE08-10 "new" DCF).
REPORTED_P_TARGETS = (0.01, 0.001)


def output_stem(output: str) -> str:
    """``<output>`` without ``.json``: the prefix of the score file and the DET plot."""
    return output[: -len(".json")] if output.endswith(".json") else output


def _check(cfg: ScoreConfig) -> None:
    cfg.validate()
    for name in ("embeddings", "trials", "output"):
        if not getattr(cfg, name):
            raise ConfigError(f"{name}: must be set")
    if cfg.backend == "plda" and not cfg.train_embeddings:
        raise ConfigError("train_embeddings: backend plda needs embeddings of labelled training speakers")
    if cfg.score_norm == "asnorm" and not (cfg.cohort_embeddings or cfg.train_embeddings):
        raise ConfigError("cohort_embeddings: asnorm needs a cohort (or train_embeddings to use as one)")


def load_cohort(cfg: ScoreConfig, train: Embeddings | None, scored: Embeddings) -> np.ndarray:
    """The asnorm cohort's vectors (float64), per-speaker means if so configured."""
    cohort = load_embeddings(cfg.cohort_embeddings) if cfg.cohort_embeddings else train
    assert cohort is not None  # _check
    shared = np.count_nonzero(scored.lookup(cohort.keys) >= 0)
    if shared:
        # A trial utterance in its own cohort scores against itself: its top cohort statistics are inflated.
        log.warning("%d cohort utterances of %s are also in %s", shared, cohort.source, scored.source)
    return speaker_means(cohort) if cfg.cohort_speaker_means else cohort.vectors.astype(np.float64)


def score_trials(
    backend: Backend,
    vectors: np.ndarray,
    enroll: np.ndarray,
    test: np.ndarray,
    cohort: np.ndarray | None = None,
    top_n: int = 0,
) -> np.ndarray:
    """Score trials (row indices into ``vectors``), AS-normalised against ``cohort`` when one is given."""
    used, rows = np.unique(np.concatenate([enroll, test]), return_inverse=True)
    scored = vectors[used].astype(np.float64)
    project = backend.prepare(scored)
    space = project(scored)
    enroll_rows, test_rows = rows[: len(enroll)], rows[len(enroll) :]
    raw = space.pairs(enroll_rows, test_rows)
    if cohort is None:
        return raw
    mean, std = top_stats(space, project(cohort), min(top_n, len(cohort)))
    return asnorm(raw, enroll_rows, test_rows, mean, std)


def summarise(
    scores: np.ndarray, labels: np.ndarray, cfg: ScoreConfig, backend: dict[str, Any], duplicates: int = 0
) -> dict[str, Any]:
    p_target = cfg.p_target
    summary: dict[str, Any] = {"eer_percent": 100 * eer(scores, labels)}
    for p in sorted({p_target, *REPORTED_P_TARGETS}, reverse=True):
        summary[f"min_dcf_{p:g}"] = min_dcf(scores, labels, p)
    n_targets = int(labels.sum())
    summary |= {
        "p_target": p_target,
        "trials": len(labels),
        "duplicate_trials_dropped": duplicates,
        "targets": n_targets,
        "nontargets": len(labels) - n_targets,
        "backend": cfg.backend,
        **backend,
        "score_norm": cfg.score_norm,
    }
    return summary


def write_scores(url: str, trials: Trials, scores: np.ndarray) -> None:
    """``enroll test score target|nontarget`` per trial, in the order of the trial list."""
    words = np.where(trials.labels == 1, "target", "nontarget")
    lines = (
        f"{e} {t} {s:.8f} {w}\n" for e, t, s, w in zip(trials.enroll, trials.test, scores, words, strict=True)
    )
    storage.write_bytes(url, "".join(lines).encode("utf-8"))


def run(cfg: ScoreConfig) -> dict[str, Any]:
    """Score ``cfg.trials`` with the embeddings of ``cfg.embeddings``.

    Writes ``cfg.output`` (metrics JSON) and beside it ``<stem>.scores`` and ``<stem>.det.png``; returns the
    JSON's content.
    """
    _check(cfg)
    stem = output_stem(cfg.output)
    for url in (cfg.output, f"{stem}.scores", f"{stem}.det.png"):
        storage.check_output(url, folder=False)  # before the work, not after it
    embeddings = load_embeddings(cfg.embeddings)
    trials = read_trials(cfg.trials)
    enroll, test = resolve(trials, embeddings)
    train = load_embeddings(cfg.train_embeddings) if cfg.train_embeddings else None
    backend = make_backend(cfg, train)
    facts = backend.describe()
    cohort = None
    if cfg.score_norm == "asnorm":
        cohort = load_cohort(cfg, train, embeddings)
        facts["cohort_size"] = min(cfg.cohort_size, len(cohort))
    scores = score_trials(backend, embeddings.vectors, enroll, test, cohort, cfg.cohort_size)
    summary = summarise(scores, trials.labels, cfg, facts, trials.duplicates)

    write_scores(f"{stem}.scores", trials, scores)
    p_miss, p_fa = det_curve(scores, trials.labels)
    png = det_png(
        p_miss,
        p_fa,
        eer=summary["eer_percent"] / 100,
        min_dcf=summary[f"min_dcf_{cfg.p_target:g}"],
        p_target=cfg.p_target,
        n_targets=summary["targets"],
        n_nontargets=summary["nontargets"],
        system=cfg.backend + (" + AS-norm" if cfg.score_norm == "asnorm" else ""),
    )
    storage.write_bytes(f"{stem}.det.png", png)
    if cfg.run:
        summary["calibration"] = record(
            cfg, embeddings.vectors, (enroll, test), scores, trials.labels, summary["eer_percent"]
        )
    # The JSON goes last: its presence means the score file and the plot are complete too.
    storage.write_json(cfg.output, summary)
    log.info(
        "%d trials: EER %.2f%%, minDCF(%g) %.4f -> %s",
        len(trials),
        summary["eer_percent"],
        cfg.p_target,
        summary[f"min_dcf_{cfg.p_target:g}"],
        cfg.output,
    )
    return summary
