"""The training input pipeline: resampled WebDataset shards -> joined fields -> (augmented source copy) ->
mean normalisation -> segment pairs -> (source masks) -> batches.

Every rank (and every loader worker) draws shards at random with replacement from the whole shard list, so
ranks need no shard assignment, any world size works, and ``with_epoch`` gives every rank the same number of
batches. Samples a stage cannot use (too short, a field missing) become markers counted in the batch's
``skipped`` tally, so the run's summary accounts for them instead of dropping them silently.
"""

from __future__ import annotations

import collections
import logging
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import webdataset as wds

from .. import storage
from ..config import AugmentConfig, DataConfig, FeatureConfig, MaskAugmentConfig, from_dict
from ..preprocess.features import apply_cmn
from ..preprocess.phones.base import ALIGNED
from ..shard import format as fmt
from ..shard.verify import require_field_entries
from .augment import Augmenter, mask

log = logging.getLogger(__name__)

FBANK = "fbank"
SKIP_REASONS = ("missing_field", "too_short", "unaligned", "misaligned_fields")
# A loader that sees this many unusable utterances in a row would otherwise spin forever on a bad shard set.
_MAX_CONSECUTIVE_SKIPS = 20000
Sample = dict[str, Any]


@dataclass
class Corpus:
    """What the model and the loader need to know about the shard sets they train on."""

    shards: list[str]
    """URLs of every fbank shard (the primary field; the other fields are found beside them)."""
    speakers: list[str]
    """Known speakers, sorted; a speaker's class index is its position."""
    feat_dim: int
    num_phones: int
    """Phone classes of the phone field (0 when training without phone conditioning)."""
    utterances: int
    hours: float
    features: dict[str, Any]
    """The fbank settings of the (first) shard set, as recorded by ``preprocess``."""


def field_summary(root: str, field: str) -> dict[str, Any]:
    url = storage.join(root, field, "summary.json")
    try:
        return storage.read_json(url)
    except FileNotFoundError:
        raise fmt.ShardError(
            f"{url}: field {field!r} missing (run `sse-dist preprocess` on {root})"
        ) from None


def describe(roots: Iterable[str], phones_field: str) -> Corpus:
    shards, speakers, dims, classes, utts, seconds, features = [], set(), set(), set(), 0, 0.0, {}
    for root in roots:
        index = fmt.read_index(root)
        fbank = field_summary(root, FBANK)
        dims.add(int(fbank["feat_dim"]))
        features = features or fbank["features"]
        if phones_field:
            phones = field_summary(root, phones_field)
            require_field_entries(root, phones_field, phones)
            classes.add(int(phones["num_classes"]))
        shards += [fmt.shard_url(root, FBANK, s["name"]) for s in index["shards"]]
        speakers.update(s for shard in index["shards"] for s in shard["speakers"] if s is not None)
        utts += sum(s["utterances"] for s in index["shards"])
        seconds += sum(s["seconds"] for s in index["shards"])
    if len(dims) > 1 or len(classes) > 1:
        raise fmt.ShardError(
            f"shard sets disagree: feature dims {sorted(dims)}, phone classes {sorted(classes)}"
        )
    if not shards:
        raise fmt.ShardError("no shards to train on (train.shards is empty)")
    num_phones = classes.pop() if classes else 0
    return Corpus(shards, sorted(speakers), dims.pop(), num_phones, utts, seconds / 3600, features)


def open_shards(src: Iterable[dict[str, str]], fields: list[str]) -> Iterator[Sample]:
    for item in src:
        url = item["url"]
        root = posixpath.dirname(posixpath.dirname(url))  # <root>/fbank/<name>.tar
        name = posixpath.basename(url)[: -len(".tar")]
        yield from fmt.iter_joined(root, name, fields)


def to_arrays(
    src: Iterable[Sample],
    cfg: DataConfig,
    phones_field: str,
    spk2idx: dict[str, int],
    outcomes: bool = False,
) -> Iterator[Sample]:
    """Decode features (raw log-mel of the VAD's speech frames), phones and the speaker label. Hard phones stay
    indices until the batch is built, so only the target segment's frames are ever one-hot encoded. With
    ``outcomes`` (phone classifier training, which learns only from force-aligned utterances), also how each
    utterance got its phone labels."""
    for s in src:
        if "__missing__" in s:
            yield {"__skipped__": "missing_field"}
            continue
        where = f"shard {s['__shard__']} key {s['__key__']}"
        feats = fmt.load_npy(s["fbank.npy"], where)
        phones = fmt.load_npy(s[f"{phones_field}.npy"], where) if phones_field else np.zeros((len(feats), 0))
        keep = fmt.load_npy(s["vad.npy"], where).astype(bool) if cfg.vad else np.ones(len(feats), bool)
        if not len(feats) == len(phones) == len(keep):
            # Fields computed with other frame settings (or damaged): indexing one by another would crash.
            log.warning("%s: %d feature, %d phone, %d VAD frames", where, len(feats), len(phones), len(keep))
            yield {"__skipped__": "misaligned_fields"}
            continue
        # Select speech frames before widening to float32, and decode the metadata only for its label.
        feats, phones = feats[keep], phones[keep]
        label = spk2idx.get(fmt.load_json(s["json"], where).get("speaker"), -1) if spk2idx else -1
        how = s.get(f"{phones_field}.json") if outcomes else None
        yield {
            "feats": torch.from_numpy(feats.astype(np.float32)),
            "phones": torch.from_numpy(phones.astype(np.int64 if phones.ndim == 1 else np.float32)),
            "label": label,
            "how": fmt.load_json(how, where).get("how") if how else None,
        }


def _rng(seed: int, stage: int) -> np.random.Generator:
    # One stream per (seed, loader worker, stage): stages draw independently, workers differ, reruns repeat.
    return np.random.default_rng([seed, wds.utils.pytorch_worker_seed(), stage])


def augment_source(
    src: Iterable[Sample], cfg: AugmentConfig, features: FeatureConfig, seed: int
) -> Iterator[Sample]:
    """Give each utterance a ``source_feats`` copy with noise and reverberation (raw log-mel), and cut the
    target from the clean utterance, the same copy, or an independent one (``cfg.target``)."""
    augmenter = Augmenter(cfg, features, _rng(seed, 1))
    for s in src:
        if "__skipped__" in s or not augmenter.enabled:
            yield s
            continue
        augmenter.observe(s["feats"])
        source = augmenter(s["feats"])
        if cfg.target == "same":
            target = source
        elif cfg.target == "independent":
            target = augmenter(s["feats"])
        else:
            target = s["feats"]
        yield {**s, "source_feats": source, "feats": target}


def normalise(src: Iterable[Sample], cmn_window: int) -> Iterator[Sample]:
    """Mean normalisation of the utterance and, if it has one, of its augmented source copy."""
    for s in src:
        if "__skipped__" in s:
            yield s
            continue
        out = {**s, "feats": apply_cmn(s["feats"], cmn_window)}
        if "source_feats" in s:
            out["source_feats"] = apply_cmn(s["source_feats"], cmn_window)
        yield out


def mask_source(src: Iterable[Sample], cfg: MaskAugmentConfig, seed: int) -> Iterator[Sample]:
    """SpecAugment time and frequency masks on the (normalised) source segment."""
    rng = _rng(seed, 2)
    for s in src:
        yield s if "__skipped__" in s else {**s, "source": mask(s["source"], cfg, rng)}


def _pick(rng: np.random.Generator, ranges: list[tuple[int, int]]) -> int:
    """A uniform draw from the union of inclusive integer ranges."""
    sizes = np.array([hi - lo + 1 for lo, hi in ranges])
    r = int(rng.integers(sizes.sum()))
    for (lo, _), size in zip(ranges, sizes):
        if r < size:
            return lo + r
        r -= size
    raise AssertionError("unreachable")


def cut_pairs(src: Iterable[Sample], cfg: DataConfig, seed: int) -> Iterator[Sample]:
    """A source segment and a disjoint target segment (before or after it) from each utterance; the source is
    cut from the augmented copy where there is one."""
    rng = np.random.default_rng([seed, wds.utils.pytorch_worker_seed()])
    s_len, t_len = cfg.source_frames, cfg.target_frames
    for s in src:
        if "__skipped__" in s:
            yield s
            continue
        n = len(s["feats"])
        if n < s_len + t_len:
            yield {"__skipped__": "too_short"}
            continue
        a = _pick(rng, [r for r in [(0, n - s_len - t_len), (t_len, n - s_len)] if r[0] <= r[1]])
        b = _pick(rng, [r for r in [(0, a - t_len), (a + s_len, n - t_len)] if r[0] <= r[1]])
        yield {
            "source": s.get("source_feats", s["feats"])[a : a + s_len],
            "target": s["feats"][b : b + t_len],
            "phones": s["phones"][b : b + t_len],
            "label": s["label"],
        }


def cut_chunks(src: Iterable[Sample], cfg: DataConfig, seed: int) -> Iterator[Sample]:
    """Phone classifier training: a chunk of ``source_frames`` frames of each force-aligned utterance, with the
    labels of those same frames (phone-loop decodes are too noisy to learn from, and are counted instead)."""
    rng = np.random.default_rng([seed, wds.utils.pytorch_worker_seed()])
    for s in src:
        if "__skipped__" in s:
            yield s
            continue
        if s["how"] != ALIGNED:
            yield {"__skipped__": "unaligned"}
            continue
        n, size = len(s["feats"]), cfg.source_frames
        if n < size:
            yield {"__skipped__": "too_short"}
            continue
        a = int(rng.integers(n - size + 1))
        chunk = s["feats"][a : a + size]
        yield {"source": chunk, "target": chunk[:0], "phones": s["phones"][a : a + size], "label": s["label"]}


def batch_pairs(src: Iterable[Sample], size: int, num_phones: int) -> Iterator[Sample]:
    """Stack ``size`` pairs (one-hot encoding hard phones); the batch also carries the tally of samples skipped
    while it was filled."""
    pairs: list[Sample] = []
    skipped: collections.Counter[str] = collections.Counter()
    run = 0
    for s in src:
        if "__skipped__" in s:
            skipped[s["__skipped__"]] += 1
            run += 1
            if run >= _MAX_CONSECUTIVE_SKIPS:
                raise fmt.ShardError(
                    f"{run} utterances in a row were unusable ({dict(skipped)}): too short for "
                    "train.data.source_frames + target_frames after VAD, the phone field is missing, or (phones "
                    "mode) it holds no force-aligned utterances"
                )
            continue
        run = 0
        pairs.append(s)
        if len(pairs) == size:
            phones = torch.stack([p["phones"] for p in pairs])
            if not phones.is_floating_point():  # scattered straight into float: no int64 one-hot to convert
                phones = torch.zeros(*phones.shape, num_phones).scatter_(-1, phones.unsqueeze(-1), 1.0)
            yield {
                "source": torch.stack([p["source"] for p in pairs]),
                "target": torch.stack([p["target"] for p in pairs]),
                "phones": phones,
                "labels": torch.tensor([p["label"] for p in pairs], dtype=torch.long),
                "skipped": dict(skipped),
            }
            pairs, skipped = [], collections.Counter()


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
        wds.shuffle(cfg.shuffle_buffer, initial=min(cfg.shuffle_buffer, 100)),
        wds.pipelinefilter(to_arrays)(cfg, phones_field, spk2idx, chunks),
        wds.pipelinefilter(augment_source)(cfg.augment, from_dict(FeatureConfig, corpus.features), seed),
        wds.pipelinefilter(normalise)(cfg.cmn_window),
        wds.pipelinefilter(cut_chunks if chunks else cut_pairs)(cfg, seed),
        wds.pipelinefilter(mask_source)(cfg.augment.masks, seed),
        wds.pipelinefilter(batch_pairs)(micro_batch, corpus.num_phones),
    )
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=cfg.num_workers, persistent_workers=False)
    return loader.with_epoch(num_batches)
