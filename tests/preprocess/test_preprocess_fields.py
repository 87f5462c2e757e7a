"""Phone fields side by side on a local Ray cluster: each done on its own, none touching the features."""

import numpy as np
import pytest

from sse_dist import storage
from sse_dist.config import PreprocessConfig, ShardConfig
from sse_dist.preprocess import run as preprocess
from sse_dist.shard import format as fmt
from sse_dist.shard import run as shard

pytestmark = pytest.mark.integration


def _corrupt_fbank(root, name, key):
    """Bit rot in one utterance's features (the fbank field itself is not redone: its manifest still holds)."""
    url = fmt.shard_url(root, "fbank", name)
    samples = list(fmt.iter_tar(url))
    with storage.atomic_write(url) as f:
        w = fmt.tar_writer(f)
        for s in samples:
            w.write({**s, "fbank.npy": b"\x93NUMPY garbage"} if s["__key__"] == key else s)
        w.close()


def _keys(root, field, index):
    return [
        s["__key__"] for sh in index["shards"] for s in fmt.iter_tar(fmt.shard_url(root, field, sh["name"]))
    ]


def test_phone_sources_side_by_side_with_a_corrupt_utterance(corpus, tmp_path):
    root = str(tmp_path / "set")
    shard(ShardConfig(input=str(corpus / "train"), output=root, max_utts_per_shard=6))
    index = {"shards": list(fmt.iter_shards(root))}
    keys = [k for s in index["shards"] for k in s["keys"]]
    n = len(index["shards"])

    # The features and pocketsphinx's phones (the synthetic corpus has transcripts: all force-aligned).
    ps = PreprocessConfig(shards=[root], num_cpus=2)
    ps.phones.source, ps.phones.field = "pocketsphinx", "ps"
    result = preprocess(ps)
    assert result["totals"]["phones"]["outcomes"] == {"aligned": len(keys), "failed": 0}

    victim_shard = index["shards"][1]["name"]
    victim = index["shards"][1]["keys"][3]
    _corrupt_fbank(root, victim_shard, victim)
    fbank_tars = {
        sh["name"]: storage.sha256(fmt.shard_url(root, "fbank", sh["name"])) for sh in index["shards"]
    }

    units = PreprocessConfig(shards=[root], num_cpus=2)
    units.phones.source, units.phones.field, units.phones.form = "kmeans", "units", "soft"
    units.phones.model, units.phones.units, units.phones.sample_frames = str(tmp_path / "u.npz"), 12, 3000
    result = preprocess(units)
    assert result["totals"]["shards"]["fbank"] == {"processed": 0, "skipped": n}
    assert {sh: storage.sha256(fmt.shard_url(root, "fbank", sh)) for sh in fbank_tars} == fbank_tars
    summary = storage.read_json(storage.join(root, "units", "summary.json"))
    assert summary["num_classes"] == 12 and summary["form"] == "soft"
    assert summary["outcomes"] == {"clustered": len(keys) - 1, "failed": 1}
    assert [f["key"] for f in summary["failures"]] == [victim] and "not a plain .npy" in summary["failures"][
        0
    ]["reason"]
    assert _keys(root, "units", index) == [k for k in keys if k != victim]
    sample = next(fmt.iter_joined(root, index["shards"][0]["name"], ["fbank", "units"]))
    posteriors = fmt.load_npy(sample["units.npy"], "test")
    assert posteriors.dtype == np.float16 and posteriors.shape[1] == 12
    np.testing.assert_array_equal(posteriors.sum(1), 1)

    assert storage.read_json(storage.join(root, "ps", "summary.json"))["outcomes"]["aligned"] == len(keys)
