"""The training input pipeline: resampled WebDataset shards -> joined fields -> segment pairs -> batches.

Every rank (and every loader worker) draws shards at random with replacement from the whole shard list, so
ranks need no shard assignment, any world size works, and ``with_epoch`` gives every rank the same number of
batches. Samples a stage cannot use (too short, a field missing) become markers counted in the batch's
``skipped`` tally, so the run's summary accounts for them instead of dropping them silently.
"""

from __future__ import annotations

import collections
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import webdataset as wds

from .. import storage
from ..config import DataConfig
from ..preprocess.features import apply_cmn
from ..preprocess.phones.base import ALIGNED
from ..shard import format as fmt

FBANK = "fbank"
SKIP_REASONS = ("missing_field", "too_short", "unaligned")
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


def field_summary(root: str, field: str) -> dict[str, Any]:
    url = storage.join(root, field, "summary.json")
    try:
        return storage.read_json(url)
    except FileNotFoundError:
        raise fmt.ShardError(
            f"{url}: field {field!r} missing (run `sse-dist preprocess` on {root})"
        ) from None


def describe(roots: Iterable[str], phones_field: str) -> Corpus:
    shards, speakers, dims, classes, utts, seconds = [], set(), set(), set(), 0, 0.0
    for root in roots:
        index = fmt.read_index(root)
        fbank = field_summary(root, FBANK)
        dims.add(int(fbank["feat_dim"]))
        if phones_field:
            classes.add(int(field_summary(root, phones_field)["num_classes"]))
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
    return Corpus(shards, sorted(speakers), dims.pop(), classes.pop() if classes else 0, utts, seconds / 3600)


def open_shards(src: Iterable[dict[str, str]], fields: list[str]) -> Iterator[Sample]:
    for item in src:
        url = item["url"]
        root = posixpath.dirname(posixpath.dirname(url))  # <root>/fbank/<name>.tar
        name = posixpath.basename(url)[: -len(".tar")]
        yield from fmt.iter_joined(root, name, fields)


def to_arrays(
    src: Iterable[Sample], cfg: DataConfig, phones_field: str, num_phones: int, spk2idx: dict[str, int]
) -> Iterator[Sample]:
    """Decode features (VAD, mean normalisation), phones (one-hot if hard) and the speaker label."""
    for s in src:
        if "__missing__" in s:
            yield {"__skipped__": "missing_field"}
            continue
        where = f"shard {s['__shard__']} key {s['__key__']}"
        feats = fmt.load_npy(s["fbank.npy"], where).astype(np.float32)
        phones = fmt.load_npy(s[f"{phones_field}.npy"], where) if phones_field else np.zeros((len(feats), 0))
        if phones.ndim == 1:
            phones = np.eye(num_phones, dtype=np.float32)[phones]
        if cfg.vad:
            keep = fmt.load_npy(s["vad.npy"], where).astype(bool)
            feats, phones = feats[keep], phones[keep]
        meta = fmt.load_json(s["json"], where)
        how = s.get(f"{phones_field}.json")
        yield {
            "feats": apply_cmn(torch.from_numpy(feats), cfg.cmn_window),
            "phones": torch.from_numpy(phones.astype(np.float32)),
            "label": spk2idx.get(meta.get("speaker"), -1),
            "how": fmt.load_json(how, where).get("how") if how else None,
        }


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
    """A source segment and a disjoint target segment (before or after it) from each utterance."""
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
            "source": s["feats"][a : a + s_len],
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


def batch_pairs(src: Iterable[Sample], size: int) -> Iterator[Sample]:
    """Stack ``size`` pairs; the batch also carries the tally of samples skipped while it was filled."""
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
            yield {
                "source": torch.stack([p["source"] for p in pairs]),
                "target": torch.stack([p["target"] for p in pairs]),
                "phones": torch.stack([p["phones"] for p in pairs]),
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
        wds.pipelinefilter(to_arrays)(cfg, phones_field, corpus.num_phones, spk2idx),
        wds.pipelinefilter(cut_chunks if chunks else cut_pairs)(cfg, seed),
        wds.pipelinefilter(batch_pairs)(micro_batch),
    )
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=cfg.num_workers, persistent_workers=False)
    return loader.with_epoch(num_batches)
