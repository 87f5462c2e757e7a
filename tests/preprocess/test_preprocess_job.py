"""A real local Ray run over real shards, including a damaged utterance and a rerun."""

import io
import json

import numpy as np
import pytest

from sse_dist import storage
from sse_dist.config import PreprocessConfig, ShardConfig
from sse_dist.preprocess import run as preprocess
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard

pytestmark = pytest.mark.integration


def _replace_audio(root, name, key, data):
    """Rewrite one audio shard with ``key``'s audio bytes replaced (as bit rot or a bad upload would)."""
    url = fmt.shard_url(root, fmt.AUDIO, name)
    samples = list(fmt.iter_tar(url))
    with storage.atomic_write(url) as f:
        w = fmt.tar_writer(f)
        for s in samples:
            if s["__key__"] == key:
                s = {**s, "flac": data}
            w.write(s)
        w.close()


def test_every_key_is_processed_or_quarantined_and_reruns_skip(corpus, tmp_path):
    root = str(tmp_path / "set")
    shard(ShardConfig(input=str(corpus / "train"), output=root, max_utts_per_shard=6))
    index = {"shards": list(fmt.iter_shards(root))}
    keys = [k for s in index["shards"] for k in s["keys"]]
    victim_shard = index["shards"][1]
    victim = victim_shard["keys"][2]
    _replace_audio(root, victim_shard["name"], victim, b"fLaC" + bytes(200))

    first = preprocess(PreprocessConfig(shards=[root], num_cpus=2))
    totals = first["totals"]
    assert totals["input"] == len(keys) == totals["processed"] + totals["quarantined"]
    assert totals["quarantined"] == 1
    assert totals["shards"] == {
        f: {"processed": len(index["shards"]), "skipped": 0} for f in ("fbank", "phones")
    }
    assert totals["phones"]["outcomes"] == {"aligned": len(keys) - 1, "failed": 0}

    seen = {}
    for field in ("fbank", "phones"):
        urls = [fmt.shard_url(root, field, sh["name"]) for sh in index["shards"]]
        seen[field] = [s["__key__"] for url in urls for s in fmt.iter_tar(url)]
    assert seen["fbank"] == seen["phones"] == [k for k in keys if k != victim]
    summary = storage.read_json(storage.join(root, "fbank", "summary.json"))
    assert [q["key"] for q in summary["quarantine"]] == [victim]
    assert "undecodable" in summary["quarantine"][0]["reason"]

    sample = next(fmt.iter_joined(root, index["shards"][0]["name"], ["fbank", "phones"]))
    feats = np.load(io.BytesIO(sample["fbank.npy"]), allow_pickle=False)
    phones = np.load(io.BytesIO(sample["phones.npy"]), allow_pickle=False)
    vad = np.load(io.BytesIO(sample["vad.npy"]), allow_pickle=False)
    assert feats.dtype == np.float16 and feats.shape[1] == 40
    assert phones.dtype == np.uint8 and phones.shape == vad.shape == (feats.shape[0],)
    assert 0.3 < vad.mean() <= 1.0 and phones.max() < 40 and (phones > 0).mean() > 0.5
    assert json.loads(sample["json"])["speaker"] is not None

    again = preprocess(PreprocessConfig(shards=[root], num_cpus=2))
    assert [s["processed"] for s in again["totals"]["shards"].values()] == [0, 0]
    assert again["totals"]["processed"] == totals["processed"]

    # A shard whose manifest is missing (a crashed task) is redone, that field only; the others are kept.
    storage.remove(fmt.done_url(root, "phones", index["shards"][0]["name"]))
    redo = preprocess(PreprocessConfig(shards=[root], num_cpus=2))
    assert redo["totals"]["shards"] == {
        "fbank": {"processed": 0, "skipped": 4},
        "phones": {"processed": 1, "skipped": 3},
    }

    # Other feature settings make every shard of every field stale.
    other = PreprocessConfig(shards=[root], num_cpus=2)
    other.features.num_mel_bins = 24
    assert [s["processed"] for s in preprocess(other)["totals"]["shards"].values()] == [4, 4]
    assert storage.read_json(storage.join(root, "fbank", "summary.json"))["feat_dim"] == 24
