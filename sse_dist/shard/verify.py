"""Checks of a whole shard set: the recorded sha256 and size of every audio shard (``sse-dist check-shards``),
and the speaker labels a supervised run needs.

``shard`` records each audio tar's sha256 and size in ``index.json``; a shard damaged or replaced after that (a
bad copy, a partial sync, an edit) is found here, every mismatch reported, none skipped after the first.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import storage
from . import format as fmt
from .inputs import unlabelled_speakers

log = logging.getLogger(__name__)


def check_shard(root: str, shard: dict[str, Any]) -> str | None:
    """What is wrong with one audio shard, or None if it matches the index."""
    url = fmt.shard_url(root, fmt.AUDIO, shard["name"])
    try:
        size = storage.size(url)
    except FileNotFoundError:
        return f"{url}: missing"
    if shard.get("bytes") is not None and size != shard["bytes"]:
        return f"{url}: {size} bytes, the index records {shard['bytes']}"
    digest = storage.sha256(url)
    if digest != shard.get("sha256"):
        return f"{url}: sha256 {digest[:16]}..., the index records {str(shard.get('sha256'))[:16]}..."
    return None


def verify(roots: list[str]) -> dict[str, Any]:
    """Every audio shard of every set checked against its index; raises ``ValueError`` listing the mismatches."""
    if not roots:
        raise ValueError("check-shards: no shard set given")
    checked, problems = 0, []
    for root in roots:
        for shard in fmt.read_index(root)["shards"]:
            checked += 1
            problem = check_shard(root, shard)
            if problem:
                log.error("%s", problem)
                problems.append(problem)
    if problems:
        raise ValueError(
            f"{len(problems)} of {checked} shards do not match their index: " + "; ".join(problems)
        )
    return {"shard_sets": len(roots), "shards": checked, "mismatches": 0}


def require_labels(roots: list[str]) -> None:
    """Refuse a shard set with utterances that ``utt2spk`` left unlabelled, naming how many (training on the
    labelled rest would quietly drop them)."""
    for root in roots:
        index = fmt.read_index(root)
        missing = unlabelled_speakers(index)
        if missing:
            raise ValueError(
                f"train.mode=supervised needs a speaker for every utterance: {missing} of "
                f"{index['summary']['input']} utterances of {root} had no utt2spk line (fix utt2spk and "
                "reshard, or list the labelled speakers in train.labelled_speakers)"
            )


def require_field_entries(root: str, field: str, summary: dict[str, Any]) -> None:
    """Refuse, once, a field that labelled no utterance of a shard set: the loader would otherwise warn for every
    key of every epoch (tens of thousands of lines) before failing for want of samples."""
    if not summary.get("processed"):
        reasons = summary.get("reasons") or {}
        detail = f" ({', '.join(f'{r}: {n}' for r, n in reasons.items())})" if reasons else ""
        raise ValueError(
            f"{storage.join(root, field)}: field {field!r} holds no entries for the {summary.get('input', 0)} "
            f"utterances of {root}{detail}; preprocess with a phone source that fits the corpus"
        )
