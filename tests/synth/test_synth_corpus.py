"""The Kaldi data dirs, the alignment and the trial list that ``synth`` writes."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import soundfile as sf
from synth_helpers import TINY, read_ctm, read_table

from sse_dist.config import SynthConfig
from sse_dist.phoneset import PHONES, SILENCE
from sse_dist.synth import make_trials, run
from sse_dist.synth.lexicon import LEXICON
from sse_dist.synth.phones import SPECS

ID = re.compile(r"^[A-Za-z0-9_-]+$")
KALDI_FILES = ("wav.scp", "utt2spk", "spk2utt", "spk2gender", "text", "phones.ctm")


@pytest.mark.parametrize("split", ["train", "test"])
def test_data_dir_is_well_formed(tiny, split):
    out, cfg, _ = tiny
    data = out / split
    for name in KALDI_FILES:
        lines = (data / name).read_text().splitlines()
        assert lines == sorted(lines), f"{name} is not sorted"
    wav, utt2spk, text = (read_table(data / name) for name in ("wav.scp", "utt2spk", "text"))
    ctm = read_ctm(data / "phones.ctm")
    assert set(wav) == set(utt2spk) == set(text) == set(ctm)
    spk2utt = read_table(data / "spk2utt")
    assert {u: [s] for s, utts in spk2utt.items() for u in utts} == utt2spk
    spk2gender = read_table(data / "spk2gender")
    assert set(spk2gender) == set(spk2utt) and all(g in (["m"], ["f"]) for g in spk2gender.values())
    for utt, (rel,) in wav.items():
        assert ID.match(utt) and ID.match(utt2spk[utt][0]) and utt.startswith(utt2spk[utt][0])
        assert rel == f"audio/{utt2spk[utt][0]}/{utt}.flac"
        info = sf.info(str(data / rel))
        assert (info.format, info.subtype, info.channels) == ("FLAC", "PCM_16", 1)
        assert info.samplerate == cfg.sample_rate
        assert cfg.min_duration - 1e-3 <= info.frames / info.samplerate <= cfg.max_duration + 1e-3
        audio, _ = sf.read(str(data / rel))
        assert 0 < np.abs(audio).max() < 1


def test_ctm_is_contiguous_covers_the_audio_and_spells_the_text(tiny):
    out, _, _ = tiny
    lexicon = read_table(out / "lexicon.txt")
    for split in ("train", "test"):
        data = out / split
        wav, text = read_table(data / "wav.scp"), read_table(data / "text")
        for utt, segments in read_ctm(data / "phones.ctm").items():
            info = sf.info(str(data / wav[utt][0]))
            starts = np.array([s for s, _, _ in segments])
            ends = starts + np.array([d for _, d, _ in segments])
            assert starts[0] == 0 and np.all(ends > starts)
            np.testing.assert_allclose(starts[1:], ends[:-1], atol=2e-6)
            assert ends[-1] == pytest.approx(info.frames / info.samplerate, abs=2e-6)
            phones = [p for _, _, p in segments]
            assert set(phones) <= set(PHONES) and phones[0] == phones[-1] == SILENCE
            spoken = [p for p in phones if p != SILENCE]
            assert spoken == [p for word in text[utt] for p in lexicon[word]]


def test_splits_hold_disjoint_speakers_and_the_configured_counts(tiny):
    out, cfg, summary = tiny
    speakers = {split: set(read_table(out / split / "spk2utt")) for split in ("train", "test")}
    assert not speakers["train"] & speakers["test"]
    assert len(speakers["test"]) == cfg.num_test_speakers
    assert len(speakers["train"]) == cfg.num_speakers - cfg.num_test_speakers
    n_train = (cfg.num_speakers - cfg.num_test_speakers) * cfg.utts_per_speaker
    n_test = cfg.num_test_speakers * cfg.test_utts_per_speaker
    assert summary["utterances"] == {"train": n_train, "test": n_test}
    assert summary["speakers"] == {"train": len(speakers["train"]), "test": len(speakers["test"])}
    assert 0 < summary["hours"]["test"] < summary["hours"]["train"]


def test_trial_list_has_every_target_pair_and_right_labels(tiny):
    out, _, summary = tiny
    utt2spk = read_table(out / "test" / "utt2spk")
    trials = [line.split() for line in (out / "test" / "trials").read_text().splitlines()]
    pairs = [(a, b) for _, a, b in trials]
    assert len(set(pairs)) == len(pairs) == summary["trials"]
    assert all(a != b and a in utt2spk and b in utt2spk for a, b in pairs)
    assert all(label == str(int(utt2spk[a] == utt2spk[b])) for label, a, b in trials)
    # the tiny test set is small enough that every pair, target or not, is a trial
    assert {frozenset(p) for p in pairs} == {frozenset(p) for p in itertools.combinations(utt2spk, 2)}


def test_make_trials_keeps_targets_and_samples_distinct_non_targets():
    utts = [f"s{s}-{u}" for s in range(5) for u in range(4)]
    speakers = [u.split("-")[0] for u in utts]
    trials = make_trials(utts, speakers, max_trials=40, seed=0)
    labels = [label for label, _, _ in trials]
    assert labels.count(1) == 5 * 6 and labels.count(0) == 10
    assert len({(a, b) for _, a, b in trials}) == 40
    assert trials == make_trials(utts, speakers, max_trials=40, seed=0)
    assert trials != make_trials(utts, speakers, max_trials=40, seed=1)
    only_targets = make_trials(utts, speakers, max_trials=10, seed=0)
    assert [label for label, _, _ in only_targets] == [1] * 30


def test_same_seed_gives_the_same_corpus_with_any_number_of_workers(tiny, tmp_path):
    out, cfg, _ = tiny
    again = run(SynthConfig(output=str(tmp_path / "again"), workers=2, **TINY))
    other = run(SynthConfig(output=str(tmp_path / "other"), workers=2, **{**TINY, "seed": TINY["seed"] + 1}))
    assert again["utterances"] == other["utterances"]
    for split in ("train", "test"):
        for name in (*KALDI_FILES, "trials") if split == "test" else KALDI_FILES:
            assert (tmp_path / "again" / split / name).read_text() == (out / split / name).read_text()
        for (rel,) in read_table(out / split / "wav.scp").values():
            ours, _ = sf.read(str(out / split / rel), dtype="int16")
            np.testing.assert_array_equal(
                ours, sf.read(str(tmp_path / "again" / split / rel), dtype="int16")[0]
            )
            theirs = tmp_path / "other" / split / rel
            assert not theirs.exists() or not np.array_equal(ours, sf.read(str(theirs), dtype="int16")[0])


def test_other_sample_rates(tmp_path):
    cfg = SynthConfig(output=str(tmp_path), sample_rate=8000, workers=1, **{**TINY, "num_speakers": 4})
    run(cfg)
    wav = read_table(tmp_path / "train" / "wav.scp")
    for utt, segments in read_ctm(tmp_path / "train" / "phones.ctm").items():
        info = sf.info(str(tmp_path / "train" / wav[utt][0]))
        assert info.samplerate == 8000
        assert sum(d for _, d, _ in segments) == pytest.approx(info.frames / 8000, abs=1e-5)


def test_lexicon_covers_the_phone_set_with_speakable_words():
    assert {p for phones in LEXICON.values() for p in phones} == set(PHONES) - {SILENCE}
    assert all(re.match(r"^[A-Z]+$", word) for word in LEXICON)
    assert all(any(SPECS[p].kind == "vowel" for p in phones) for phones in LEXICON.values())
