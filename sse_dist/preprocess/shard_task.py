"""Per-shard work shared by the fields, and the fbank field's task (one Ray task per audio shard).

Each field of a shard is done on its own and fingerprinted with only the settings it depends on, so a new phone
source never recomputes or rewrites the features. Outputs are all-or-nothing per shard and field: the tar is
written under a temporary name and published, then the done-manifest (``<field>/<name>.json``) is written last.
A crashed or killed task leaves no manifest, so a rerun (or Ray's retry) redoes the shard; a finished one is
skipped. Every key listed in the index ends up processed or quarantined (or, for phones, failed), with the reason.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import torch

from .. import storage
from ..config import FeatureConfig
from ..shard import format as fmt
from ..shard.fields import FBANK
from .utterance import AudioError, fbank_member, featurize


def fingerprint(settings: dict[str, Any]) -> str:
    """Identifies the settings a field's shard was computed with; a shard made with other settings is redone."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def fbank_fingerprint(features: FeatureConfig) -> str:
    return fingerprint({"features": asdict(features)})


def is_done(root: str, field: str, name: str, want: str) -> bool:
    try:
        return storage.read_json(fmt.done_url(root, field, name)).get("fingerprint") == want
    except FileNotFoundError:
        return False


def joined_samples(
    root: str, name: str, fields: list[str], expected: list[str], lost: list[dict[str, str]], unexpected: list
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Samples of the shard that the index lists, each once, with ``fields`` joined. Listed keys that cannot be
    read (a damaged tar, a key absent from the shard or missing from a later field) go to ``lost``; members the
    index does not list (or repeats) go to ``unexpected`` and are not used."""
    wanted, seen = set(expected), set()
    try:
        for sample in fmt.iter_joined(root, name, fields):
            key = sample["__key__"]
            if key not in wanted or key in seen:
                reason = "duplicate key in shard" if key in seen else "key not in the index"
                unexpected.append({"key": key, "reason": reason})
                continue
            seen.add(key)
            if "__missing__" in sample:
                lost.append(
                    {"key": key, "reason": f"missing from field(s) {', '.join(sample['__missing__'])}"}
                )
                continue
            yield key, sample
    except fmt.ShardError as e:
        reason = f"unreadable shard: {e}"
    else:
        reason = f"not in the {fields[0]} shard"  # listed in the index, but the tar was rewritten without it
    lost += [{"key": key, "reason": reason} for key in expected if key not in seen]


def fbank_shard(root: str, name: str, keys: list[str], features: FeatureConfig) -> dict[str, Any]:
    """Log-mel filterbank and VAD of every utterance of one audio shard; returns the done-manifest."""
    torch.set_num_threads(1)  # one task per core; intra-op threads would only contend
    t0 = time.perf_counter()
    quarantine: list[dict[str, str]] = []
    unexpected: list[dict[str, str]] = []
    processed = frames = 0
    with storage.atomic_write(fmt.shard_url(root, FBANK, name), sole_writer=True) as f:
        writer = fmt.tar_writer(f)
        for key, sample in joined_samples(root, name, [fmt.AUDIO], keys, quarantine, unexpected):
            try:
                meta = fmt.load_json(sample.get("json", b"{}"), f"{name}/{key}")
                log_mel, vad = featurize(sample, features)
            except (AudioError, fmt.ShardError) as e:
                quarantine.append({"key": key, "reason": str(e)})
                continue
            writer.write(fbank_member(key, meta, log_mel, vad))
            processed += 1
            frames += int(log_mel.shape[0])
        writer.close()
    done = {
        "shard": name,
        "input": len(keys),
        "fingerprint": fbank_fingerprint(features),
        "processed": processed,
        "quarantined": quarantine,
        "unexpected": unexpected,
        "frames": frames,
        "seconds": time.perf_counter() - t0,
    }
    storage.write_json(fmt.done_url(root, FBANK, name), done)
    return done
