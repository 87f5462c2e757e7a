"""The phone stage's per-shard work (what each Ray actor runs), called directly: every key is accounted for."""

import io

import numpy as np

from sse_dist import storage
from sse_dist.config import FeatureConfig, PhoneConfig, ShardConfig
from sse_dist.preprocess.phone_task import PhoneLabeller, batches
from sse_dist.preprocess.phones.base import Utterance
from sse_dist.preprocess.shard_task import fbank_shard
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard


def _drop_from_fbank(root, name, key):
    url = fmt.shard_url(root, "fbank", name)
    samples = [s for s in fmt.iter_tar(url) if s["__key__"] != key]
    with storage.atomic_write(url) as f:
        w = fmt.tar_writer(f)
        for s in samples:
            w.write(s)
        w.close()


def _units(path, dim=40, units=4):
    buf = io.BytesIO()
    np.savez(buf, centroids=np.random.default_rng(0).normal(size=(units, dim)).astype(np.float32))
    path.write_bytes(buf.getvalue())
    return str(path)


def test_every_key_ends_up_labelled_quarantined_or_failed(corpus, tmp_path):
    root = str(tmp_path / "set")
    shard(ShardConfig(input=str(corpus / "train"), output=root, max_utts_per_shard=5))
    entry = next(fmt.iter_shards(root))
    name, keys = entry["name"], entry["keys"]
    fbank_shard(root, name, keys, FeatureConfig())
    _drop_from_fbank(root, name, keys[1])  # lost after the fbank field finished (not its quarantine)

    phones = PhoneConfig(source="kmeans", field="units", model=_units(tmp_path / "u.npz"), units=4)
    done = PhoneLabeller(phones, FeatureConfig(), "fp").label_shard(root, name, keys)
    assert done["failed"] == [{"key": keys[1], "reason": "not in the fbank shard"}]
    assert done["outcomes"] == {"clustered": len(keys) - 1, "failed": 1}
    assert done["input"] == done["processed"] + len(done["quarantined"]) + len(done["failed"])
    assert [s["__key__"] for s in fmt.iter_tar(fmt.shard_url(root, "units", name))] == keys[:1] + keys[2:]
    assert storage.read_json(fmt.done_url(root, "units", name))["fingerprint"] == "fp"


def test_batches_hold_whole_utterances_up_to_a_frame_budget():
    utts = [
        Utterance(str(n), {}, np.zeros((n, 2), np.float32), np.ones(n, bool), {}) for n in (3, 4, 9, 2, 2)
    ]
    assert [[int(u.key) for u in b] for b in batches(utts, max_frames=8)] == [[3, 4], [9], [2, 2]]
