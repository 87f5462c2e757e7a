import numpy as np
import pytest
from synth_helpers import TINY, read_table

from sse_dist.config import ConfigError, SynthConfig
from sse_dist.synth import make_trials, run
from sse_dist.synth.speakers import in_session, sample_session, sample_style
from sse_dist.synth.synthesize import _room


def test_utterances_of_a_session_share_its_recording_conditions():
    session = sample_session(np.random.default_rng(0), 6.0, (10.0, 35.0), rt60_max=0.8)
    a = in_session(np.random.default_rng(1), sample_style(np.random.default_rng(1), 6.0, (10, 35)), session)
    b = in_session(np.random.default_rng(2), sample_style(np.random.default_rng(2), 6.0, (10, 35)), session)
    assert np.array_equal(a.channel_db, b.channel_db) and a.noise == b.noise
    assert a.rt60_s == b.rt60_s == session.rt60_s and 0.15 <= session.rt60_s <= 0.8
    assert abs(a.snr_db - session.snr_db) <= 3 and a.f0_shift != b.f0_shift  # the voice still varies
    other = sample_session(np.random.default_rng(5), 6.0, (10.0, 35.0), rt60_max=0.8)
    assert not np.array_equal(other.channel_db, session.channel_db)


def test_room_response_has_the_drawn_decay_and_direct_to_reverberant_ratio():
    rate, rt60, drr = 16000, 0.5, 6.0
    impulse = np.zeros(rate, np.float32)
    impulse[0] = 1.0
    h = _room(np.random.default_rng(0), impulse, rt60, drr, rate)
    assert h[0] == 1.0
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=0.01)
    early, late = h[1:800], h[int(0.4 * rate) : int(0.4 * rate) + 800]  # 50 ms windows 0.4 s apart: -48 dB
    assert 10 * np.log10(np.sum(early**2) / np.sum(late**2)) == pytest.approx(48, abs=4)


def test_target_trials_pair_only_different_sessions():
    utts = [f"s{s}-{u}" for s in range(3) for u in range(4)]
    speakers = [u.split("-")[0] for u in utts]
    sessions = [int(u.split("-")[1]) % 2 for u in utts]
    trials = make_trials(utts, speakers, max_trials=1000, seed=0, sessions=sessions)
    targets = [(a, b) for label, a, b in trials if label == 1]
    assert len(targets) == 3 * 4  # of the 6 pairs per speaker, the 2 within a session are left out
    assert all(int(a[-1]) % 2 != int(b[-1]) % 2 for a, b in targets)
    assert sum(1 for label, _, _ in trials if label == 0) == 66 - 3 * 6  # every non-target pair


def test_a_corpus_with_sessions_and_rooms(tmp_path):
    summary = run(SynthConfig(output=str(tmp_path), sessions_per_speaker=2, rt60_max=0.6,
                              **{**TINY, "test_utts_per_speaker": 4}))  # fmt: skip
    utt2spk = read_table(tmp_path / "test" / "utt2spk")
    trials = [line.split() for line in (tmp_path / "test" / "trials").read_text().splitlines()]
    targets = [(a, b) for label, a, b in trials if label == "1"]
    assert len(targets) == summary["target_trials"] == 2 * 4  # two speakers, 2 x 2 cross-session pairs each
    assert all(utt2spk[a] == utt2spk[b] and int(a[-4:]) % 2 != int(b[-4:]) % 2 for a, b in targets)


def test_config_refuses_a_room_too_dry_to_draw():
    with pytest.raises(ConfigError, match="rt60_max"):
        SynthConfig(rt60_max=0.1).validate()
