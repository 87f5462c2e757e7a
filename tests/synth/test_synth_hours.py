"""``synth.hours``: a corpus sized by audio hours, written speaker by speaker."""

from __future__ import annotations

from synth_helpers import TINY, read_table

from sse_dist.config import ConfigError, SynthConfig
from sse_dist.synth import run
from sse_dist.synth.corpus import num_train_speakers


def test_hours_sets_the_training_speakers_and_leaves_the_test_split_alone():
    cfg = SynthConfig(**TINY)
    assert num_train_speakers(cfg) == TINY["num_speakers"] - TINY["num_test_speakers"]
    sized = SynthConfig(**(TINY | {"hours": 100.0, "utts_per_speaker": 30, "min_duration": 3.0}))
    # 100 h of 30 utterances averaging 2.5 s: 4,800 speakers
    assert num_train_speakers(sized) == 4800


def test_negative_hours_are_refused():
    try:
        SynthConfig(hours=-1).validate()
    except ConfigError as e:
        assert "hours" in str(e)
    else:
        raise AssertionError("negative hours accepted")


def test_a_corpus_sized_by_hours_has_about_that_much_audio_and_sorted_tables(tmp_path):
    cfg = SynthConfig(output=str(tmp_path), workers=2, **(TINY | {"hours": 0.01}))
    summary = run(cfg)
    # 36 s of 1.5-s utterances, 3 a speaker: 8 training speakers
    assert summary["speakers"]["train"] == 8
    assert summary["utterances"]["train"] == 24
    assert 0.005 < summary["hours"]["train"] < 0.015
    for table in ("wav.scp", "utt2spk", "text", "spk2utt"):
        lines = (tmp_path / "train" / table).read_text().splitlines()
        assert lines == sorted(lines), table
    spk2utt = read_table(tmp_path / "train" / "spk2utt")
    assert len(spk2utt) == 8 and all(len(u) == 3 for u in spk2utt.values())
    assert len(read_table(tmp_path / "test" / "spk2utt")) == TINY["num_test_speakers"]
