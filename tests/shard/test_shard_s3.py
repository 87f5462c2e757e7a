"""``shard`` into an object store: a real S3 server (moto) on loopback, reached through s3fs."""

from __future__ import annotations

import hashlib

import pytest
from shard_helpers import shard_set

from sse_dist import storage
from sse_dist.config import ShardConfig
from sse_dist.shard import format as fmt
from sse_dist.shard import run
from sse_dist.shard.audio import Audio
from sse_dist.shard.writer import ShardWriter

pytestmark = pytest.mark.integration


def test_s3_round_trip(kaldi_dir, s3_bucket):
    utts = [f"u{i}" for i in range(5)]
    corpus = kaldi_dir([(u, f"wav/{u}.flac") for u in utts], {"utt2spk": "".join(f"{u} spk\n" for u in utts)})
    (corpus / "wav" / "u3.flac").write_bytes(b"not audio")
    root = f"{s3_bucket}/sets/demo"

    index = shard_set(corpus, root, max_utts_per_shard=2)

    assert storage.listdir(storage.join(root, "audio")) == [
        "000000.json", "000000.tar", "000001.json", "000001.tar", "quarantine.jsonl"
    ]  # fmt: skip
    assert index["summary"]["sharded"] == 4 and index["quarantine"][0]["id"] == "u3"
    for entry in index["shards"]:
        url = fmt.shard_url(root, fmt.AUDIO, entry["name"])
        data = storage.read_bytes(url)
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["bytes"], entry["sha256"])
        samples = list(fmt.iter_tar(url))
        assert [s["__key__"] for s in samples] == entry["keys"]
        for sample in samples:
            assert sample["flac"] == (corpus / "wav" / f"{sample['__key__']}.flac").read_bytes()

    with pytest.raises(ValueError, match="already a shard set"):
        run(ShardConfig(input=str(corpus), output=root))


def test_s3_failed_shard_is_never_uploaded(s3_bucket):
    root = f"{s3_bucket}/broken"
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(root, 10, 1.0) as writer:
        writer.add("k", Audio(b"x" * 10, "flac", 1.0, 16000, 1), {"speaker": None})
        raise RuntimeError("boom")
    assert not storage.exists(fmt.shard_url(root, fmt.AUDIO, "000000"))
