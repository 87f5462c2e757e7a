"""Bad utterances are quarantined with a reason and counted; nothing half-written is ever left behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shard_helpers import audio_bytes, shard_set, tone

from sse_dist import storage
from sse_dist.shard import format as fmt
from sse_dist.shard.audio import Audio
from sse_dist.shard.writer import ShardWriter

# utterance id -> (file name, bytes or None for "do not create", expected reason category)
_NAN = tone(0.6)
_NAN[100] = np.nan
_WAV = audio_bytes(tone(0.6), "WAV", "PCM_16")
_FLAC = audio_bytes(tone(0.6, seed=7))
BAD = {
    "corrupt": ("corrupt.flac", b"fLaC" + bytes(range(256)) * 8, "unreadable audio"),
    "empty": ("empty.wav", b"", "empty file"),
    "zero-length": ("zero.wav", audio_bytes(tone(0.0), "WAV"), "empty audio"),
    "nan": ("nan.wav", audio_bytes(_NAN, "WAV", "FLOAT"), "NaN or infinite samples"),
    "short": ("short.flac", audio_bytes(tone(0.1)), "too short"),
    "long": ("long.flac", audio_bytes(tone(3.0)), "too long"),
    "missing": ("missing.flac", None, "missing file"),
    "cut-wav": ("cut.wav", _WAV[: len(_WAV) // 2], "truncated"),
    "cut-flac": ("cut.flac", _FLAC[: len(_FLAC) // 2], "unreadable audio"),
}


@pytest.fixture
def messy(kaldi_dir, tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    for name, data, _ in BAD.values():
        if data is not None:
            (root / name).write_bytes(data)
    entries = [(utt, name) for utt, (name, _, _) in BAD.items()]
    entries += [("good", "good.flac"), ("good", "good2.flac"), ("a.b", "ab.flac"), ("a_b", "a_b.flac")]
    for _, name in entries[-4:]:
        (root / name).write_bytes(_FLAC)
    return kaldi_dir(entries + [("no-path", "")], fill=False)


def test_bad_utterances_are_quarantined(messy, tmp_path):
    index = shard_set(messy, tmp_path / "set", max_duration=2.0, workers=3)

    summary = index["summary"]
    assert summary["input"] == len(BAD) + 5 == summary["sharded"] + summary["quarantined"]
    assert [k for s in index["shards"] for k in s["keys"]] == ["a_b", "good"]
    reasons = {(q["id"], q["path"]): q["reason"] for q in index["quarantine"]}
    for utt, (name, _, category) in BAD.items():
        assert reasons.pop((utt, name)).partition(":")[0] == category, utt
    # Same id twice: the first line keeps it. "a.b" and "a_b" share key a_b: "a.b" sorts first and keeps it.
    assert (
        reasons.pop(("good", "good2.flac"))
        == "duplicate key: 'good' is taken by an earlier line with the same id"
    )
    assert reasons.pop(("a_b", "a_b.flac")) == "duplicate key: 'a_b' is taken by utterance 'a.b'"
    assert reasons.pop(("no-path", "")) == "malformed: wav.scp line 14 has no path"
    assert reasons == {}
    assert summary["reasons"]["unreadable audio"] == 2 and summary["reasons"]["duplicate key"] == 2

    lines = (tmp_path / "set" / "audio" / "quarantine.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == index["quarantine"]
    # Reasons are reproducible too (no object addresses or timings in them).
    assert shard_set(messy, tmp_path / "again", max_duration=2.0)["quarantine"] == index["quarantine"]


def test_failed_shard_is_never_committed(tmp_path):
    audio = Audio(b"x" * 10, "flac", 1.0, 16000, 1)
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(str(tmp_path), 10, 1.0) as writer:
        writer.add("k", audio, {"speaker": None})
        raise RuntimeError("boom")
    assert list((tmp_path / "audio").iterdir()) == []


def test_rerun_after_an_unfinished_run_replaces_it(kaldi_dir, tmp_path):
    corpus = kaldi_dir([("a", "a.flac"), ("b", "b.flac")])
    audio = tmp_path / "set" / "audio"
    audio.mkdir(parents=True)
    for leftover in ("000000.tar", "000007.tar", "000007.json", "quarantine.jsonl"):
        (audio / leftover).write_bytes(b"stale")

    index = shard_set(corpus, tmp_path / "set")

    assert sorted(p.name for p in audio.iterdir()) == ["000000.json", "000000.tar"]
    assert storage.read_bytes(str(audio / "000000.tar")) != b"stale"
    assert [s["__key__"] for s in fmt.iter_tar(str(audio / "000000.tar"))] == index["shards"][0]["keys"]


def test_everything_quarantined_still_gives_an_index(kaldi_dir, tmp_path):
    corpus = kaldi_dir([("a", "a.flac")])
    index = shard_set(corpus, tmp_path / "set", min_duration=5.0, max_duration=9.0)
    assert index["shards"] == [] and index["summary"]["quarantined"] == 1
    assert (tmp_path / "set" / fmt.INDEX).exists()
