"""Preprocess one audio shard into its fbank shard and phone shard (one Ray task per shard).

Outputs are all-or-nothing per shard: both tars are written under temporary names and published, then the
done-manifests (``<field>/<name>.json``) are written last. A crashed or killed task leaves no manifest, so a
rerun (or Ray's retry) redoes the shard; a finished one is skipped. Every key listed in the index ends up
processed or quarantined, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from typing import Any

import torch

from .. import storage
from ..config import FeatureConfig, PhoneConfig
from ..shard import format as fmt
from .phones import PhoneError, make_source
from .utterance import AudioError, fbank_member, featurize, phone_member, phones_for

FBANK = "fbank"


def fingerprint(features: FeatureConfig, phones: PhoneConfig) -> str:
    """Identifies the settings a shard was computed with; a shard made with other settings is redone."""
    blob = json.dumps({"features": asdict(features), "phones": asdict(phones)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_done(root: str, name: str, features: FeatureConfig, phones: PhoneConfig) -> bool:
    want = fingerprint(features, phones)
    for field in (FBANK, phones.field):
        try:
            if storage.read_json(fmt.done_url(root, field, name)).get("fingerprint") != want:
                return False
        except FileNotFoundError:
            return False
    return True


def _samples(
    root: str,
    name: str,
    expected: list[str],
    quarantine: list[dict[str, str]],
    unexpected: list[dict[str, str]],
) -> Any:
    """Audio samples of the shard that the index lists, each once. Listed keys that cannot be read go to
    ``quarantine``; members the index does not list (or repeats) go to ``unexpected`` and are not used."""
    wanted, seen = set(expected), set()
    try:
        for sample in fmt.iter_tar(fmt.shard_url(root, fmt.AUDIO, name)):
            key = sample["__key__"]
            if key not in wanted or key in seen:
                reason = "duplicate key in shard" if key in seen else "key not in the index"
                unexpected.append({"key": key, "reason": reason})
                continue
            seen.add(key)
            yield key, sample
    except fmt.ShardError as e:
        for key in expected:
            if key not in seen:
                quarantine.append({"key": key, "reason": f"unreadable audio shard: {e}"})
                seen.add(key)


def process_shard(
    root: str, name: str, keys: list[str], features: FeatureConfig, phones: PhoneConfig
) -> dict:
    torch.set_num_threads(1)  # one task per core; intra-op threads would only contend
    t0 = time.perf_counter()
    source = make_source(phones.source, features)
    quarantine: list[dict[str, str]] = []
    unexpected: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    done = {FBANK: 0, phones.field: 0}
    frames = 0
    with (
        storage.atomic_write(fmt.shard_url(root, FBANK, name)) as f_fbank,
        storage.atomic_write(fmt.shard_url(root, phones.field, name)) as f_phones,
    ):
        w_fbank, w_phones = fmt.tar_writer(f_fbank), fmt.tar_writer(f_phones)
        for key, sample in _samples(root, name, keys, quarantine, unexpected):
            try:
                meta = fmt.load_json(sample.get("json", b"{}"), f"{name}/{key}")
                log_mel, vad = featurize(sample, features)
            except (AudioError, fmt.ShardError) as e:
                quarantine.append({"key": key, "reason": str(e)})
                continue
            w_fbank.write(fbank_member(key, meta, log_mel, vad))
            done[FBANK] += 1
            frames += int(log_mel.shape[0])
            try:
                w_phones.write(phone_member(key, phones_for(source, meta, log_mel), phones))
                done[phones.field] += 1
            except (PhoneError, ValueError) as e:
                failed.append({"key": key, "reason": str(e)})
        w_fbank.close()
        w_phones.close()
    common = {
        "shard": name,
        "input": len(keys),
        "fingerprint": fingerprint(features, phones),
        "quarantined": quarantine,
        "unexpected": unexpected,
    }
    fbank_done = {**common, "processed": done[FBANK], "frames": frames}
    phones_done = {**common, "processed": done[phones.field], "failed": failed}
    fbank_done["seconds"] = phones_done["seconds"] = time.perf_counter() - t0
    storage.write_json(fmt.done_url(root, phones.field, name), phones_done)
    storage.write_json(fmt.done_url(root, FBANK, name), fbank_done)
    return fbank_done | {"phones_processed": done[phones.field], "phones_failed": len(failed)}
