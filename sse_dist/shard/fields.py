"""The fields of a shard set (``shards/README.md``), defined once for the stages that write and read them: the
feature field's name, how a phone field's utterances got their labels, and the description of shard sets that
training and embedding start from (read from the index and the fields' summaries).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import storage
from . import format as fmt
from .verify import require_field_entries

FBANK = "fbank"
"""The feature field: ``<key>.fbank.npy`` (raw log-mel), ``<key>.vad.npy`` (energy VAD), ``<key>.json``."""

# How an utterance got its labels (``how`` in a phone field's ``<key>.<field>.json``); the field's summary
# counts each. ``aligned`` labels come from a time alignment to a known transcript (the only ones ``train
# --mode phones`` learns from); ``fallen_back`` ones had a transcript that could not be aligned (the reason is
# kept) and were decoded instead.
ALIGNED = "aligned"
DECODED = "decoded"
FALLEN_BACK = "fallen_back"
CLASSIFIED = "classified"
CLUSTERED = "clustered"


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
        speakers.update(index["speakers"])
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
