"""A Kaldi data dir through ``shard`` and back: members, audio bytes, JSON and index all agree."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
import soundfile as sf
from shard_helpers import SR, shard_set, tone

from sse_dist.shard import format as fmt

UTT2SPK = "spkA-u1 spkA\nspkA-u2 spkA\nspkB-u1 spkB\nspkB-u2 spkB\nspkB-u3.x spkB\n"
TEXT = "spkA-u1 HELLO WORLD\nspkA-u2\nspkB-u1 ONE TWO\nspkB-u2 THREE\nspkB-u3.x FOUR\n"
# Out of order on purpose: readers binary-search by start time.
CTM = "spkA-u1 1 0.30 0.20 AH0\nspkA-u1 1 0.00 0.30 HH\nspkB-u1 1 0.00 0.50 W\n"


@pytest.fixture
def corpus(kaldi_dir, write_audio, tmp_path):
    """Five utterances: FLAC, 16-bit and float WAV, Ogg/Vorbis (re-encoded), one listed by absolute path."""
    outside = tmp_path / "elsewhere" / "b3.flac"
    originals = {
        "spkA-u1": write_audio(tmp_path / "corpus" / "wav" / "a1.flac", 0.7, seed=1),
        "spkA-u2": write_audio(tmp_path / "corpus" / "wav" / "a2.wav", 0.5, "WAV", seed=2, subtype="PCM_16"),
        "spkB-u1": write_audio(tmp_path / "corpus" / "wav" / "b1.wav", 0.4, "WAV", seed=3, subtype="FLOAT"),
        "spkB-u2": write_audio(tmp_path / "corpus" / "wav" / "b2.ogg", 0.9, "OGG", seed=4),
        "spkB-u3.x": write_audio(outside, 0.6, seed=5, channels=2),
    }
    entries = [
        ("spkB-u2", "wav/b2.ogg"),
        ("spkA-u1", "wav/a1.flac"),
        ("spkA-u2", "wav/a2.wav"),
        ("spkB-u3.x", str(outside)),
        ("spkB-u1", "wav/b1.wav"),
    ]
    labels = {"utt2spk": UTT2SPK, "text": TEXT, "phones.ctm": CTM}
    return kaldi_dir(entries, labels), originals


def shard(input_dir, output, **kw):
    return shard_set(input_dir, output, max_utts_per_shard=2, **kw)


def read_set(root):
    index = json.loads((root / fmt.INDEX).read_text())
    # The index holds counts only; the per-utterance lists are in each shard's manifest.
    assert all(set(s) == {"name", "utterances", "bytes", "sha256", "seconds"} for s in index["shards"])
    index["shards"] = list(fmt.iter_shards(str(root)))
    samples = {}
    for entry in index["shards"]:
        url = fmt.shard_url(str(root), fmt.AUDIO, entry["name"])
        tar = (root / fmt.AUDIO / f"{entry['name']}.tar").read_bytes()
        assert entry["bytes"] == len(tar)
        assert entry["sha256"] == hashlib.sha256(tar).hexdigest()
        got = list(fmt.iter_tar(url))
        assert [s["__key__"] for s in got] == entry["keys"]
        for sample, duration, speaker, rate in zip(
            got, entry["durations"], entry["speakers"], entry["sample_rates"], strict=True
        ):
            meta = fmt.load_json(sample["json"], sample["__key__"])
            assert (meta["duration"], meta["speaker"], meta["sample_rate"]) == (duration, speaker, rate)
            samples[meta["id"]] = sample | {"meta": meta, "shard": entry["name"]}
        assert entry["utterances"] == len(got)
        assert entry["seconds"] == pytest.approx(sum(entry["durations"]))
    return index, samples


def test_kaldi_dir_round_trip(corpus, tmp_path):
    input_dir, originals = corpus
    shard(input_dir, tmp_path / "set")
    index, samples = read_set(tmp_path / "set")

    assert index["format"] == fmt.FORMAT and index["version"] == fmt.VERSION and index["fields"] == ["audio"]
    assert [s["name"] for s in index["shards"]] == ["000000", "000001", "000002"]
    # Sorted by utterance id; the id's dot is not allowed in a key.
    keys = [k for s in index["shards"] for k in s["keys"]]
    assert keys == ["spkA-u1", "spkA-u2", "spkB-u1", "spkB-u2", "spkB-u3_x"]
    assert index["speakers"] == ["spkA", "spkB"]
    assert index["summary"] | {"hours": 0} == {
        "input": 5, "sharded": 5, "quarantined": 0, "hours": 0, "excluded": 0, "reasons": {},
        "unmatched_labels": {}, "unlabelled": {"phones.ctm": 3},
    }  # fmt: skip
    assert index["summary"]["hours"] == pytest.approx(3.1 / 3600, abs=1e-4)
    assert index["quarantine"] == []
    assert not (tmp_path / "set" / "audio" / "quarantine.jsonl").exists()

    for utt in ("spkA-u1", "spkB-u3.x"):
        assert samples[utt]["flac"] == originals[utt]  # kept byte for byte
    for utt in ("spkA-u2", "spkB-u1"):
        assert samples[utt]["wav"] == originals[utt]
    reencoded = samples["spkB-u2"]
    assert "ogg" not in reencoded and sf.info(io.BytesIO(reencoded["flac"])).subtype == "PCM_16"
    vorbis, _ = sf.read(io.BytesIO(originals["spkB-u2"]), dtype="float32")
    flac, _ = sf.read(io.BytesIO(reencoded["flac"]), dtype="float32")
    np.testing.assert_allclose(flac, vorbis, atol=1 / 32768 + 1e-6)


def test_sample_json(corpus, tmp_path):
    input_dir, _ = corpus
    shard(input_dir, tmp_path / "set", source="mycorpus")
    _, samples = read_set(tmp_path / "set")
    a1 = samples["spkA-u1"]["meta"]
    assert a1 == {
        "id": "spkA-u1", "duration": 0.7, "sample_rate": SR, "channels": 1, "speaker": "spkA",
        "text": "HELLO WORLD", "source": "mycorpus", "path": "wav/a1.flac",
        "phones": [[0.0, 0.3, "HH"], [0.3, 0.2, "AH0"]],
    }  # fmt: skip
    assert samples["spkA-u2"]["meta"]["text"] == ""  # listed in text with no words
    assert "phones" not in samples["spkA-u2"]["meta"]
    assert samples["spkB-u3.x"]["meta"]["channels"] == 2
    assert samples["spkB-u3.x"]["meta"]["path"] == str(tmp_path / "elsewhere" / "b3.flac")


def test_rerun_is_reproducible_and_refused_in_place(corpus, tmp_path):
    input_dir, _ = corpus
    first = shard(input_dir, tmp_path / "one")
    second = shard(input_dir, tmp_path / "two", workers=3)
    assert [s["sha256"] for s in first["shards"]] == [s["sha256"] for s in second["shards"]]
    with pytest.raises(ValueError, match="already a shard set"):
        shard(input_dir, tmp_path / "one")


def test_shard_size_limit(kaldi_dir, tmp_path):
    input_dir = kaldi_dir([(f"u{i}", f"u{i}.flac") for i in range(3)])
    index = shard_set(input_dir, tmp_path / "set", max_shard_mb=0.001)
    # Every utterance is larger than 1 kB, so each closes its shard.
    assert [s["keys"] for s in index["shards"]] == [["u0"], ["u1"], ["u2"]]


def test_reencodes_other_formats_and_keeps_rate(kaldi_dir, write_audio, tmp_path):
    write_audio(tmp_path / "corpus" / "x.aiff", 0.5, "AIFF", subtype="PCM_24", sr=22050)
    index = shard_set(str(kaldi_dir([("x", "x.aiff")])), tmp_path / "set")
    (sample,) = fmt.iter_tar(fmt.shard_url(str(tmp_path / "set"), fmt.AUDIO, "000000"))
    x, sr = sf.read(io.BytesIO(sample["flac"]), dtype="float32")
    assert sr == 22050 == index["shards"][0]["sample_rates"][0] and len(x) == 22050 // 2
    np.testing.assert_allclose(x, tone(0.5, sr=22050)[:, 0], atol=1 / 32768 + 1e-6)


def test_long_and_non_ascii_ids(kaldi_dir, tmp_path):
    long_id = "spk/" + "x" * 300  # the key keeps 200 characters: longer than a USTAR member name can be
    index = shard(kaldi_dir([(long_id, "long.flac"), ("café.1", "cafe.flac")]), tmp_path / "set")
    samples = {
        s["__key__"]: s for s in fmt.iter_tar(fmt.shard_url(str(tmp_path / "set"), fmt.AUDIO, "000000"))
    }
    assert sorted(samples) == sorted(index["shards"][0]["keys"]) == ["caf__1", "spk_" + "x" * 196]
    assert json.loads(samples["caf__1"]["json"])["id"] == "café.1"
    assert json.loads(samples["spk_" + "x" * 196]["json"])["id"] == long_id
