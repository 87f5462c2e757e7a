"""The index migration: a version-1 shard set (every key in ``index.json``) becomes version 2 (per-shard
manifests, counts in the index) in place, and is then read exactly as a freshly written one."""

from __future__ import annotations

import json

import pytest
from shard_helpers import shard_set

from sse_dist.shard import format as fmt
from sse_dist.shard.migrate import main, migrate


def _as_version_1(root) -> dict:
    """Rewrite a fresh shard set as version 1 wrote it: the manifests' lists inline, no manifest files."""
    index = json.loads((root / fmt.INDEX).read_text())
    for entry in index["shards"]:
        manifest = root / fmt.AUDIO / f"{entry['name']}.json"
        entry.update({k: v for k, v in json.loads(manifest.read_text()).items() if k != "shard"})
        manifest.unlink()
    index["version"] = 1
    (root / fmt.INDEX).write_text(json.dumps(index))
    return index


@pytest.fixture
def version_1(kaldi_dir, tmp_path):
    utts = [f"s{i % 2}-{i}" for i in range(5)]
    corpus = kaldi_dir([(u, f"{u}.flac") for u in utts], {"utt2spk": "".join(f"{u} {u[:2]}\n" for u in utts)})
    fresh = shard_set(corpus, tmp_path / "set", max_utts_per_shard=2)
    return tmp_path / "set", fresh, _as_version_1(tmp_path / "set")


def test_a_version_1_index_is_refused_with_the_migration_command(version_1):
    root, _, _ = version_1
    with pytest.raises(fmt.ShardError, match=r"index version 1.*python -m sse_dist\.shard\.migrate"):
        fmt.read_index(str(root))


def test_migration_gives_the_set_a_fresh_shard_run_writes(version_1):
    root, fresh, old = version_1
    assert migrate(str(root)) == {"root": str(root), "from": 1, "to": fmt.VERSION, "shards": 3}
    migrated = fmt.read_index(str(root))
    assert migrated | {"shards": list(fmt.iter_shards(str(root)))} == fresh
    assert [k for s in old["shards"] for k in s["keys"]] == [k for s in fresh["shards"] for k in s["keys"]]
    # Again: nothing to do.
    assert migrate(str(root))["shards"] == 0 and fmt.read_index(str(root)) == migrated


def test_an_interrupted_migration_is_finished_by_the_next(version_1):
    root, fresh, old = version_1
    # Died after the first manifest, before the index: still a version-1 set, with one stray manifest.
    entry = old["shards"][0]
    (root / fmt.AUDIO / f"{entry['name']}.json").write_text(json.dumps({"keys": entry["keys"][:1]}))
    assert main([str(root)]) == 0
    assert list(fmt.iter_shards(str(root))) == fresh["shards"]


def test_a_version_1_key_that_is_a_path_is_refused_and_the_index_left_alone(version_1):
    root, _, old = version_1
    old["shards"][1]["keys"][0] = "../x"
    (root / fmt.INDEX).write_text(json.dumps(old))
    assert main([str(root)]) == 1
    assert json.loads((root / fmt.INDEX).read_text())["version"] == 1
