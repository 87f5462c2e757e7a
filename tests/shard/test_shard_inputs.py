"""Inputs of ``shard``: a folder of audio, a speakers subset, and errors raised before anything is written."""

from __future__ import annotations

import json

import pytest
from shard_helpers import shard_set

from sse_dist.config import ShardConfig
from sse_dist.shard import format as fmt
from sse_dist.shard import run


def test_folder_input_is_unlabelled(write_audio, tmp_path):
    folder = tmp_path / "podcasts"
    write_audio(folder / "ep1" / "part.1.flac", seed=1)
    write_audio(folder / "ep1" / "part2.WAV", fmt="WAV", seed=2)
    write_audio(folder / "ep2" / "intro.ogg", fmt="OGG", seed=3)
    write_audio(folder / "top.flac", seed=4)
    (folder / "ep1" / "notes.txt").write_text("not audio")

    index = shard_set(str(folder) + "/", tmp_path / "set")

    assert index["source"] == "podcasts"
    # Sorted by utterance id ("ep1/part.1" < "ep1/part2"), not by key.
    assert index["shards"][0]["keys"] == ["ep1_part_1", "ep1_part2", "ep2_intro", "top"]
    assert index["shards"][0]["speakers"] == [None] * 4 and index["speakers"] == []
    samples = {s["__key__"]: s for s in fmt.iter_tar(fmt.shard_url(str(tmp_path / "set"), "audio", "000000"))}
    meta = json.loads(samples["ep1_part_1"]["json"])
    assert meta == {
        "id": "ep1/part.1", "duration": 0.6, "sample_rate": 16000, "channels": 1, "speaker": None,
        "text": None, "source": "podcasts", "path": "ep1/part.1.flac",
    }  # fmt: skip
    assert set(samples["ep1_part2"]) == {"__key__", "wav", "json"}
    assert set(samples["ep2_intro"]) == {"__key__", "flac", "json"}


def test_speakers_subset(kaldi_dir, tmp_path):
    utts = [f"{spk}-{i}" for spk in ("s1", "s2", "s3") for i in range(2)]
    corpus = kaldi_dir(
        [(u, f"{u}.flac") for u in utts], {"utt2spk": "".join(f"{u} {u.split('-')[0]}\n" for u in utts)}
    )
    (tmp_path / "keep").write_text("s1\ns3 s3-0 s3-1\n\nghost\n")  # a spk2utt line counts by its first field

    index = shard_set(corpus, tmp_path / "set", speakers=str(tmp_path / "keep"))

    assert index["shards"][0]["keys"] == ["s1-0", "s1-1", "s3-0", "s3-1"]
    assert index["speakers"] == ["s1", "s3"]
    summary = index["summary"]
    assert (summary["input"], summary["sharded"], summary["quarantined"], summary["excluded"]) == (4, 4, 0, 2)


def test_unmatched_labels_are_counted(kaldi_dir, tmp_path):
    corpus = kaldi_dir([("a", "a.flac")], {"utt2spk": "a s\nb s\n", "text": "c hi\n"})
    index = shard_set(corpus, tmp_path / "set")
    assert index["summary"]["unmatched_labels"] == {"utt2spk": 1, "text": 1}


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        ("missing_input", FileNotFoundError, "does not exist"),
        ("missing_scp", FileNotFoundError, r"wav.scp: missing, but .* has utt2spk"),
        ("empty_scp", ValueError, "wav.scp: empty"),
        ("piped", ValueError, r"wav.scp:2: piped command"),
        ("empty_folder", ValueError, "no audio files"),
        ("speakers_missing", FileNotFoundError, "speakers file does not exist"),
        ("speakers_empty", ValueError, "lists no speaker ids"),
        ("speakers_unlabelled", ValueError, "needs speaker labels"),
        ("speakers_none_match", ValueError, "none of its utterances"),
        ("bad_ctm", ValueError, r"phones.ctm:1: expected"),
        ("bad_utt2spk", ValueError, r"utt2spk:2: expected"),
        ("twice_in_utt2spk", ValueError, r"utt2spk:2: utterance 'a' listed twice"),
    ],
)
def test_bad_input_raises_before_writing(setup, error, match, kaldi_dir, tmp_path):
    input_dir, speakers = tmp_path / "corpus", ""
    if setup == "missing_input":
        input_dir = tmp_path / "nowhere"
    elif setup == "missing_scp":
        kaldi_dir([("a", "a.flac")], {"utt2spk": "a s1\n"})
        (input_dir / "wav.scp").unlink()
    elif setup == "empty_scp":
        kaldi_dir([])
    elif setup == "piped":
        kaldi_dir([("a", "a.flac")])
        (input_dir / "wav.scp").write_text("a a.flac\nb sph2pipe -f wav b.sph |\n")
    elif setup == "empty_folder":
        (input_dir / "sub").mkdir(parents=True)
        (input_dir / "sub" / "readme.txt").write_text("x")
    elif setup.startswith("speakers"):
        labels = {} if setup == "speakers_unlabelled" else {"utt2spk": "a s1\n"}
        kaldi_dir([("a", "a.flac")], labels)
        speakers = str(tmp_path / "speakers")
        if setup != "speakers_missing":
            (tmp_path / "speakers").write_text("\n" if setup == "speakers_empty" else "s2\n")
    elif setup == "bad_ctm":
        kaldi_dir([("a", "a.flac")], {"phones.ctm": "a 1 zero 0.1 AH\n"})
    elif setup == "bad_utt2spk":
        kaldi_dir([("a", "a.flac"), ("b", "b.flac")], {"utt2spk": "a s1\nb\n"})
    elif setup == "twice_in_utt2spk":
        kaldi_dir([("a", "a.flac")], {"utt2spk": "a s1\na s2\n"})

    with pytest.raises(error, match=match):
        run(ShardConfig(input=str(input_dir), output=str(tmp_path / "set"), speakers=speakers))
    assert not (tmp_path / "set").exists()


def test_output_with_other_content_is_refused(kaldi_dir, tmp_path):
    corpus = kaldi_dir([("a", "a.flac")])
    (tmp_path / "set" / "fbank").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"not empty \(fbank\)"):
        run(ShardConfig(input=str(corpus), output=str(tmp_path / "set")))
    assert not (tmp_path / "set" / "audio").exists()
