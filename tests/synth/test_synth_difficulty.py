"""The default corpus is neither trivial nor hopeless for a no-training baseline (MFCC statistics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from synth_helpers import read_table

from sse_dist.config import FeatureConfig, SynthConfig
from sse_dist.frontend import energy_vad, fbank, mfcc_from_fbank
from sse_dist.synth import run


def mfcc_stats(path: Path, cfg: FeatureConfig) -> np.ndarray:
    """Mean and standard deviation of 20 MFCCs over the energy-VAD speech frames."""
    audio, _ = sf.read(str(path), dtype="float32")
    log_mel, log_energy = fbank(audio, cfg)
    mfcc = mfcc_from_fbank(log_mel, 20)[energy_vad(log_energy, cfg)]
    return torch.cat([mfcc.mean(0), mfcc.std(0)]).numpy()


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """Where the miss and false-alarm rates cross as the threshold sweeps the sorted scores, %."""
    order = labels[np.argsort(-scores)]
    misses = 1 - np.cumsum(order) / order.sum()
    false_alarms = np.cumsum(1 - order) / (1 - order).sum()
    i = np.argmin(np.abs(misses - false_alarms))
    return 100 * (misses[i] + false_alarms[i]) / 2


def mfcc_stats_eer(data: Path) -> float:
    """Cosine scoring of mean-subtracted MFCC statistics on the data dir's trial list, EER %."""
    features = FeatureConfig()
    wav = read_table(data / "wav.scp")
    keys = sorted(wav)
    stats = np.stack([mfcc_stats(data / wav[k][0], features) for k in keys])
    stats -= stats.mean(axis=0)
    stats /= np.linalg.norm(stats, axis=1, keepdims=True)
    index = {k: i for i, k in enumerate(keys)}
    trials = [line.split() for line in (data / "trials").read_text().splitlines()]
    scores = np.array([stats[index[a]] @ stats[index[b]] for _, a, b in trials])
    return equal_error_rate(scores, np.array([int(label) for label, _, _ in trials]))


def test_equal_error_rate_helper():
    labels = np.array([1, 1, 0, 1, 0, 0])
    assert equal_error_rate(np.array([6.0, 5, 4, 3, 2, 1]), labels) == pytest.approx(100 / 3)
    assert equal_error_rate(np.array([6.0, 5, 1, 4, 2, 3]), labels) == 0


@pytest.mark.integration
def test_mfcc_statistics_leave_errors_on_a_24_speaker_test_set(tmp_path):
    """24 held-out speakers with the default utterances, noise and channels (one training speaker only)."""
    cfg = SynthConfig(output=str(tmp_path), num_speakers=25, num_test_speakers=24, utts_per_speaker=1)
    run(cfg)
    eer = mfcc_stats_eer(tmp_path / "test")
    print(f"MFCC-statistics EER on 24 synthetic test speakers: {eer:.2f}%")
    assert 0 < eer < 35
