"""The training input pipeline: resampled WebDataset shards -> joined fields -> (augmented source copy) ->
mean normalisation -> segment pairs -> (source masks) -> batches.

Every rank (and every loader worker) draws shards at random with replacement from the whole shard list, so
ranks need no shard assignment, any world size works, and ``with_epoch`` gives every rank the same number of
batches. Samples a stage cannot use (too short, a field missing) become :class:`Skipped` markers counted in the
batch's ``skipped`` tally, so the run's summary accounts for them instead of dropping them silently; every
stage after the first is made with :func:`passes_skips`, which lets the markers through.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import posixpath
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import webdataset as wds

from ..config import AugmentConfig, DataConfig, FeatureConfig, MaskAugmentConfig, from_dict
from ..frontend import apply_cmn
from ..shard import format as fmt
from ..shard.fields import ALIGNED, FBANK, Corpus
from .augment import Augmenter, mask

log = logging.getLogger(__name__)

SKIP_REASONS = ("missing_field", "too_short", "unaligned", "misaligned_fields")
# A loader that sees this many unusable utterances in a row would otherwise spin forever on a bad shard set.
_MAX_CONSECUTIVE_SKIPS = 20000
Sample = dict[str, Any]
"""A joined shard sample as ``shard.format.iter_joined`` yields it (members by name, ``__missing__``)."""


@dataclass(frozen=True)
class Skipped:
    """Where a sample a stage could not use was; its reason is one of ``SKIP_REASONS``."""

    reason: str


@dataclass
class Utterance:
    """A decoded utterance (its speech frames only, where the VAD is used)."""

    feats: torch.Tensor
    """Log-mel [T, D], raw and then mean-normalised; the target segment is cut from it."""
    phones: torch.Tensor
    """Phone indices [T] (hard labels) or posteriors [T, P] (soft); [T, 0] without phone conditioning."""
    label: int
    """Speaker class; -1 where unknown or not used."""
    how: str | None = None
    """How the utterance got its phone labels (read only for phone classifier training)."""
    source_feats: torch.Tensor | None = None
    """The augmented copy the source segment is cut from (None: cut it from ``feats``)."""


@dataclass
class Segment:
    """One training sample: what the model sees of an utterance."""

    source: torch.Tensor
    """The frames the extractor (or the phone classifier) reads, [S, D]."""
    phones: torch.Tensor
    """Phones of the target segment (pairs) or of the source frames (chunks), as in :class:`Utterance`."""
    label: int
    target: torch.Tensor | None = None
    """The frames the decoder reconstructs, [T, D]; None for a chunk."""


@dataclass
class Batch:
    """``size`` segments stacked, and the tally of the samples skipped while it was filled."""

    source: torch.Tensor
    phones: torch.Tensor
    """One-hot or posteriors, float [B, T, P]."""
    labels: torch.Tensor
    target: torch.Tensor | None
    skipped: dict[str, int]

    def inputs(self, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The model's keyword arguments on ``device``, features and phones in the training ``dtype``."""
        frames = {"source": self.source, "target": self.target, "phones": self.phones}
        out = {k: v.to(device, non_blocking=True).to(dtype) for k, v in frames.items() if v is not None}
        return {**out, "labels": self.labels.to(device, non_blocking=True)}


def passes_skips(make: Callable[..., Callable[[Any], Any]]) -> Callable[..., Iterator[Any]]:
    """A pipeline stage from ``make(*args)``, which returns what the stage does to one sample: ``make`` runs once
    per pass over the data, in the loader worker (where its random streams are seeded), and :class:`Skipped`
    markers pass through untouched."""

    @functools.wraps(make)
    def stage(src: Iterable[Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
        apply = make(*args, **kwargs)
        for s in src:
            yield s if isinstance(s, Skipped) else apply(s)

    return stage


def open_shards(src: Iterable[dict[str, str]], fields: list[str]) -> Iterator[Sample]:
    for item in src:
        url = item["url"]
        root = posixpath.dirname(posixpath.dirname(url))  # <root>/fbank/<name>.tar
        name = posixpath.basename(url)[: -len(".tar")]
        yield from fmt.iter_joined(root, name, fields)


def shuffled(data: Iterable[Any], bufsize: int, seed: int) -> Iterator[Any]:
    """webdataset's shuffle buffer drawing from the run's seed: its own default seeds from the clock and the
    process id, so a rerun with the same seed would read the corpus in another order."""
    rng = random.Random(int(_rng(seed, 3).integers(2**63)))
    yield from wds.shuffle(bufsize, initial=min(bufsize, 100), rng=rng)(data)


@passes_skips
def to_arrays(
    cfg: DataConfig, phones_field: str, spk2idx: dict[str, int], outcomes: bool = False
) -> Callable[[Sample], Utterance | Skipped]:
    """Decode features (raw log-mel of the VAD's speech frames), phones and the speaker label. Hard phones stay
    indices until the batch is built, so only the target segment's frames are ever one-hot encoded. With
    ``outcomes`` (phone classifier training, which learns only from force-aligned utterances), also how each
    utterance got its phone labels."""

    def decode(s: Sample) -> Utterance | Skipped:
        if "__missing__" in s:
            return Skipped("missing_field")
        where = f"shard {s['__shard__']} key {s['__key__']}"
        feats = fmt.load_npy(s["fbank.npy"], where)
        phones = fmt.load_npy(s[f"{phones_field}.npy"], where) if phones_field else np.zeros((len(feats), 0))
        keep = fmt.load_npy(s["vad.npy"], where).astype(bool) if cfg.vad else np.ones(len(feats), bool)
        if not len(feats) == len(phones) == len(keep):
            # Fields computed with other frame settings (or damaged): indexing one by another would crash.
            log.warning("%s: %d feature, %d phone, %d VAD frames", where, len(feats), len(phones), len(keep))
            return Skipped("misaligned_fields")
        # Select speech frames before widening to float32, and decode the metadata only for its label.
        feats, phones = feats[keep], phones[keep]
        label = spk2idx.get(fmt.load_json(s["json"], where).get("speaker"), -1) if spk2idx else -1
        how = s.get(f"{phones_field}.json") if outcomes else None
        return Utterance(
            torch.from_numpy(feats.astype(np.float32)),
            torch.from_numpy(phones.astype(np.int64 if phones.ndim == 1 else np.float32)),
            label,
            fmt.load_json(how, where).get("how") if how else None,
        )

    return decode


def _rng(seed: int, stage: int) -> np.random.Generator:
    # One stream per (seed, loader worker, stage): stages draw independently, workers differ, reruns repeat.
    return np.random.default_rng([seed, wds.utils.pytorch_worker_seed(), stage])


@passes_skips
def augment_source(
    cfg: AugmentConfig, features: FeatureConfig, seed: int
) -> Callable[[Utterance], Utterance]:
    """Give each utterance a ``source_feats`` copy with noise and reverberation (raw log-mel), and cut the
    target from the clean utterance, the same copy, or an independent one (``cfg.target``)."""
    augmenter = Augmenter(cfg, features, _rng(seed, 1))

    def augment(u: Utterance) -> Utterance:
        if not augmenter.enabled:
            return u
        augmenter.observe(u.feats)
        source = augmenter(u.feats)
        if cfg.target == "same":
            target = source
        elif cfg.target == "independent":
            target = augmenter(u.feats)
        else:
            target = u.feats
        return dataclasses.replace(u, source_feats=source, feats=target)

    return augment


@passes_skips
def normalise(cmn_window: int) -> Callable[[Utterance], Utterance]:
    """Mean normalisation of the utterance and, if it has one, of its augmented source copy."""

    def cmn(u: Utterance) -> Utterance:
        source = None if u.source_feats is None else apply_cmn(u.source_feats, cmn_window)
        return dataclasses.replace(u, feats=apply_cmn(u.feats, cmn_window), source_feats=source)

    return cmn


@passes_skips
def mask_source(cfg: MaskAugmentConfig, seed: int) -> Callable[[Segment], Segment]:
    """SpecAugment time and frequency masks on the (normalised) source segment."""
    rng = _rng(seed, 2)
    return lambda s: dataclasses.replace(s, source=mask(s.source, cfg, rng))


def _pick(rng: np.random.Generator, ranges: list[tuple[int, int]]) -> int:
    """A uniform draw from the union of inclusive integer ranges."""
    sizes = np.array([hi - lo + 1 for lo, hi in ranges])
    r = int(rng.integers(sizes.sum()))
    for (lo, _), size in zip(ranges, sizes):
        if r < size:
            return lo + r
        r -= size
    raise AssertionError("unreachable")


@passes_skips
def cut_pairs(cfg: DataConfig, seed: int) -> Callable[[Utterance], Segment | Skipped]:
    """A source segment and a disjoint target segment (before or after it) from each utterance; the source is
    cut from the augmented copy where there is one."""
    rng = np.random.default_rng([seed, wds.utils.pytorch_worker_seed()])
    s_len, t_len = cfg.source_frames, cfg.target_frames

    def cut(u: Utterance) -> Segment | Skipped:
        n = len(u.feats)
        if n < s_len + t_len:
            return Skipped("too_short")
        a = _pick(rng, [r for r in [(0, n - s_len - t_len), (t_len, n - s_len)] if r[0] <= r[1]])
        b = _pick(rng, [r for r in [(0, a - t_len), (a + s_len, n - t_len)] if r[0] <= r[1]])
        source = u.feats if u.source_feats is None else u.source_feats
        return Segment(source[a : a + s_len], u.phones[b : b + t_len], u.label, u.feats[b : b + t_len])

    return cut


@passes_skips
def cut_chunks(cfg: DataConfig, seed: int) -> Callable[[Utterance], Segment | Skipped]:
    """Phone classifier training: a chunk of ``source_frames`` frames of each force-aligned utterance, with the
    labels of those same frames (phone-loop decodes are too noisy to learn from, and are counted instead)."""
    rng = np.random.default_rng([seed, wds.utils.pytorch_worker_seed()])
    size = cfg.source_frames

    def cut(u: Utterance) -> Segment | Skipped:
        if u.how != ALIGNED:
            return Skipped("unaligned")
        n = len(u.feats)
        if n < size:
            return Skipped("too_short")
        a = int(rng.integers(n - size + 1))
        return Segment(u.feats[a : a + size], u.phones[a : a + size], u.label)

    return cut


def _stack(segments: list[Segment], num_phones: int, skipped: dict[str, int]) -> Batch:
    phones = torch.stack([s.phones for s in segments])
    if not phones.is_floating_point():  # scattered straight into float: no int64 one-hot to convert
        phones = torch.zeros(*phones.shape, num_phones).scatter_(-1, phones.unsqueeze(-1), 1.0)
    targets = [s.target for s in segments if s.target is not None]
    return Batch(
        source=torch.stack([s.source for s in segments]),
        phones=phones,
        labels=torch.tensor([s.label for s in segments], dtype=torch.long),
        target=torch.stack(targets) if targets else None,
        skipped=skipped,
    )


def batch_pairs(src: Iterable[Segment | Skipped], size: int, num_phones: int) -> Iterator[Batch]:
    """Stack ``size`` segments (one-hot encoding hard phones); the batch also carries the tally of samples
    skipped while it was filled."""
    segments: list[Segment] = []
    skipped: collections.Counter[str] = collections.Counter()
    run = 0
    for s in src:
        if isinstance(s, Skipped):
            skipped[s.reason] += 1
            run += 1
            if run >= _MAX_CONSECUTIVE_SKIPS:
                raise fmt.ShardError(
                    f"{run} utterances in a row were unusable ({dict(skipped)}): too short for "
                    "train.data.source_frames + target_frames after VAD, the phone field is missing, or (phones "
                    "mode) it holds no force-aligned utterances"
                )
            continue
        run = 0
        segments.append(s)
        if len(segments) == size:
            yield _stack(segments, num_phones, dict(skipped))
            segments, skipped = [], collections.Counter()


def build_loader(
    corpus: Corpus,
    cfg: DataConfig,
    phones_field: str,
    micro_batch: int,
    num_batches: int,
    spk2idx: dict[str, int],
    seed: int,
    chunks: bool = False,
) -> wds.WebLoader:
    """Batches of segment pairs, or (``chunks``, for the phone classifier) of labelled chunks."""
    fields = [FBANK] + ([phones_field] if phones_field else [])
    pipeline = wds.DataPipeline(
        wds.ResampledShards(corpus.shards, seed=seed, deterministic=True),
        wds.pipelinefilter(open_shards)(fields),
        wds.pipelinefilter(shuffled)(cfg.shuffle_buffer, seed),
        wds.pipelinefilter(to_arrays)(cfg, phones_field, spk2idx, chunks),
        wds.pipelinefilter(augment_source)(cfg.augment, from_dict(FeatureConfig, corpus.features), seed),
        wds.pipelinefilter(normalise)(cfg.cmn_window),
        wds.pipelinefilter(cut_chunks if chunks else cut_pairs)(cfg, seed),
        wds.pipelinefilter(mask_source)(cfg.augment.masks, seed),
        wds.pipelinefilter(batch_pairs)(micro_batch, corpus.num_phones),
    )
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=cfg.num_workers, persistent_workers=False)
    return loader.with_epoch(num_batches)
