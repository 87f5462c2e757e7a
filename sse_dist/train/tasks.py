"""Training modes as data: what each ``train.mode`` trains, chosen once from ``TASKS``.

A task names the model it builds, the loss terms it adds up (each a key of the model's output dict, with its
weight), whether it uses speaker labels and the phone field, how the loader cuts each utterance, and what the
run exports. The loop knows no mode by name: a new mode, loss term or extractor is an entry or a field here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from .. import storage
from ..config import DataConfig, TrainConfig
from ..models.export import PHONE_EXPORT_FORMAT
from ..models.export import export as write_model
from ..models.xvector import PhoneClassifier, SpeakerEmbeddingModel
from ..shard.fields import FBANK, Corpus, field_summary
from ..shard.verify import require_labels

log = logging.getLogger(__name__)

ModelBuilder = Callable[[TrainConfig, Corpus, int, Collection[str]], torch.nn.Module]
Exporter = Callable[[str, TrainConfig, Corpus, torch.nn.Module, dict[str, Any]], None]


@dataclass(frozen=True)
class Term:
    """One loss term: the model output it reads and its weight (a number, or the ``TrainConfig`` field that
    holds it)."""

    name: str
    weight: float | str = 1.0
    optional: bool = False
    """Left out (no head built, nothing computed) when its weight is 0: an addition a mode may go without."""

    def value(self, cfg: TrainConfig) -> float:
        return float(getattr(cfg, self.weight) if isinstance(self.weight, str) else self.weight)

    def active(self, cfg: TrainConfig) -> bool:
        return not self.optional or self.value(cfg) > 0


@dataclass(frozen=True)
class Task:
    """What one training mode trains; the loop reads only these fields."""

    build: ModelBuilder
    """The model, from the config, the shard sets, the number of speaker classes (0: no speaker labels) and
    the names of the loss terms (which heads it needs)."""
    terms: tuple[Term, ...]
    """The loss: the weighted sum of these outputs of the model."""
    speaker_labels: bool
    """Uses speaker labels (the classes are the speakers of the shards, or those of ``labelled_speakers``)."""
    phones: bool
    """Reads the phone field (``train.phones_field``): decoder conditioning, or the classifier's targets."""
    segments: Literal["pairs", "chunks"]
    """What the loader cuts from each utterance: a source and a disjoint target segment, or (phone classifier)
    one chunk of a force-aligned utterance with the labels of its frames."""
    export: Exporter
    """Writes ``model.pt`` (to the URL given) from the trained model and the run's common metadata."""

    def weights(self, cfg: TrainConfig) -> dict[str, float]:
        return {t.name: t.value(cfg) for t in self.terms if t.active(cfg)}

    def phones_field(self, cfg: TrainConfig) -> str:
        return cfg.phones_field if self.phones else ""

    def frames_per_sample(self, data: DataConfig) -> int:
        """Feature frames one sample feeds the model (throughput in frames/s)."""
        return data.source_frames + (data.target_frames if self.segments == "pairs" else 0)

    def model(self, cfg: TrainConfig, corpus: Corpus, num_speakers: int) -> torch.nn.Module:
        torch.manual_seed(cfg.seed)
        return self.build(cfg, corpus, num_speakers, list(self.weights(cfg)))


def speaker_model(
    cfg: TrainConfig, corpus: Corpus, num_speakers: int, terms: Collection[str]
) -> torch.nn.Module:
    """The extractor (``model.arch``) with a decoder when a term reconstructs, the contrastive loss when a term
    is contrastive, and a speaker classifier (``head``) when there are labels."""
    return SpeakerEmbeddingModel(
        cfg.model, corpus.feat_dim, corpus.num_phones, num_speakers, "reconstruction" in terms,
        aam=(cfg.aam_margin, cfg.aam_scale) if cfg.head == "aam" else None,
        contrastive_temperature=cfg.contrastive_temperature if "contrastive" in terms else 0.0,
    )  # fmt: skip


def phone_model(
    cfg: TrainConfig, corpus: Corpus, num_speakers: int, terms: Collection[str]
) -> torch.nn.Module:
    return PhoneClassifier(cfg.model, corpus.feat_dim, corpus.num_phones)


def export_extractor(
    url: str, cfg: TrainConfig, corpus: Corpus, model: torch.nn.Module, meta: dict[str, Any]
) -> None:
    write_model(url, model.extractor, meta)


def export_phone_classifier(
    url: str, cfg: TrainConfig, corpus: Corpus, model: torch.nn.Module, meta: dict[str, Any]
) -> None:
    """The whole classifier, with the label set it was trained on (the ``neural`` phone source checks it)."""
    labels = field_summary(cfg.shards[0], cfg.phones_field)
    meta |= {"num_classes": corpus.num_phones, "labels": {k: labels[k] for k in ("field", "source", "form")}}
    write_model(url, model, meta, PHONE_EXPORT_FORMAT)


def _speaker_task(terms: tuple[Term, ...], speaker_labels: bool, phones: bool) -> Task:
    return Task(speaker_model, terms, speaker_labels, phones, "pairs", export_extractor)


_CE, _RECON = Term("cross_entropy"), Term("reconstruction", "recon_weight")
# The contrastive loss beside any speaker mode's own, when contrastive_weight > 0.
_PLUS_CONTRASTIVE = Term("contrastive", "contrastive_weight", optional=True)

TASKS: dict[str, Task] = {
    "ssl": _speaker_task((Term("reconstruction"), _PLUS_CONTRASTIVE), speaker_labels=False, phones=True),
    "contrastive": _speaker_task((Term("contrastive"),), speaker_labels=False, phones=False),
    "supervised": _speaker_task((_CE, _PLUS_CONTRASTIVE), speaker_labels=True, phones=False),
    "multitask": _speaker_task((_CE, _RECON, _PLUS_CONTRASTIVE), speaker_labels=True, phones=True),
    # Like multitask; the labels come only from ``labelled_speakers`` (the config requires it in this mode).
    "semi": _speaker_task((_CE, _RECON, _PLUS_CONTRASTIVE), speaker_labels=True, phones=True),
    "phones": Task(
        build=phone_model,
        terms=(Term("phone_cross_entropy"),),
        speaker_labels=False,
        phones=True,
        segments="chunks",
        export=export_phone_classifier,
    ),
}


def speaker_index(cfg: TrainConfig, corpus: Corpus) -> dict[str, int]:
    """Class index of every speaker whose label the mode may use (only the listed ones where
    ``labelled_speakers`` is set: semi always, supervised and multitask optionally)."""
    if not TASKS[cfg.mode].speaker_labels:
        return {}
    speakers = corpus.speakers
    if cfg.mode == "supervised" and not cfg.labelled_speakers:
        require_labels(cfg.shards)
    if cfg.labelled_speakers:
        listed = set(storage.read_bytes(cfg.labelled_speakers).decode("utf-8").split())
        unknown = listed - set(speakers)
        if unknown:
            log.warning(
                "%d labelled speakers are not in the shards, e.g. %s", len(unknown), sorted(unknown)[:3]
            )
        speakers = [s for s in speakers if s in listed]
    if not speakers:
        raise ValueError(f"train.mode={cfg.mode} needs speaker labels, but the shards have none")
    return {s: i for i, s in enumerate(speakers)}


def export_meta(
    cfg: TrainConfig, corpus: Corpus, step: int, origin: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What every ``model.pt`` records besides its weights: sizes, frontend, features, step, mode, and the run
    it was initialised from (``init_from``)."""
    return {
        "init_from": origin,
        "model": asdict(cfg.model),
        "feat_dim": corpus.feat_dim,
        "data": {"vad": cfg.data.vad, "cmn_window": cfg.data.cmn_window},
        "features": field_summary(cfg.shards[0], FBANK)["features"],
        "step": step,
        "mode": cfg.mode,
    }
