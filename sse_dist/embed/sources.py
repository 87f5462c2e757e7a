"""Where the utterances to embed come from: the fbank shards of preprocessed shard sets, or audio (``audio.py``).

A :class:`Source` yields raw log-mel features and VAD masks; the embedders never see which route they took.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..shard import format as fmt
from ..shard.fields import FBANK


@dataclass(frozen=True)
class Utterance:
    id: str
    speaker: str
    """"" where the input does not know it."""
    feats: np.ndarray
    """Raw log-mel [T, D]."""
    vad: np.ndarray
    """Speech mask [T]."""


@dataclass
class Source:
    utterances: Iterator[Utterance]
    input: int
    """Utterances the input names (the progress bar's total). Audio: each is yielded or quarantined; shards:
    those preprocessing quarantined are in the index but have no features."""
    counts: dict[str, int]
    """How the input is counted in the stage's summary (``indexed`` for shards; ``input`` for audio)."""
    quarantine: list[dict[str, str]] = field(default_factory=list)
    """``{"id", "path", "reason"}`` of the utterances that cannot be embedded, filled while iterating."""


def utterances(roots: list[str]) -> Iterator[Utterance]:
    """Every utterance of the shard sets, each once, in index order."""
    for root in roots:
        for shard in fmt.read_index(root)["shards"]:
            for s in fmt.iter_tar(fmt.shard_url(root, FBANK, shard["name"])):
                where = f"{root} shard {shard['name']} key {s['__key__']}"
                meta = fmt.load_json(s["json"], where)
                yield Utterance(
                    meta.get("id") or s["__key__"],
                    meta.get("speaker") or "",
                    fmt.load_npy(s["fbank.npy"], where).astype(np.float32),
                    fmt.load_npy(s["vad.npy"], where).astype(bool),
                )


def shard_source(roots: list[str]) -> Source:
    total = sum(s["utterances"] for root in roots for s in fmt.read_index(root)["shards"])
    return Source(utterances(roots), total, {"indexed": total})
