"""Features: sse-dist's torch fbank (+ VAD + CMN) against kaldi-native-fbank on the same audio, one core each.

    python bench/features.py [--utts 200] [--repeats 5]

Real-time factor per core = compute seconds / audio seconds (lower is faster), medians over interleaved repeats, all
measured side by side in one run; also the largest difference between the two filterbanks.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import soundfile as sf
import torch
from common import SHARED, median_seconds, save

from sse_dist.config import FeatureConfig
from sse_dist.frontend import apply_cmn, energy_vad, fbank


def load_audio(limit: int) -> list[np.ndarray]:
    """so762-dev when it is there, else a freshly synthesised corpus."""
    scp = SHARED / "so762-dev" / "wav.scp"
    if scp.exists():
        paths = [scp.parent / line.split()[1] for line in scp.read_text().splitlines()[:limit]]
        return [sf.read(p, dtype="float32")[0] for p in paths]
    import tempfile

    from sse_dist.config import SynthConfig
    from sse_dist.synth import run

    out = tempfile.mkdtemp()
    run(SynthConfig(output=out, num_speakers=8, num_test_speakers=2, utts_per_speaker=limit // 6 + 1))
    lines = Path(out, "train", "wav.scp").read_text().splitlines()[:limit]
    return [sf.read(f"{out}/train/{line.split()[1]}", dtype="float32")[0] for line in lines]


def ours(waves: list[np.ndarray], cfg: FeatureConfig) -> list[torch.Tensor]:
    out = []
    for w in waves:
        feats, energy = fbank(w, cfg)
        vad = energy_vad(energy, cfg)
        out.append(apply_cmn(feats[vad], 0))
    return out


def kaldi(waves: list[np.ndarray], cfg: FeatureConfig) -> list[np.ndarray]:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = cfg.sample_rate
    opts.mel_opts.num_bins = cfg.num_mel_bins
    out = []
    for w in waves:
        fb = knf.OnlineFbank(opts)
        fb.accept_waveform(cfg.sample_rate, w * 32768)  # an array: no per-sample list conversion
        fb.input_finished()
        out.append(np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--utts", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = FeatureConfig()
    waves = load_audio(args.utts)
    seconds = sum(len(w) for w in waves) / cfg.sample_rate
    # Interleaved, one timing of each per round, so drifting load on the shared machine hits all three alike.
    runs = {
        "ours": lambda: ours(waves, cfg),
        "knf": lambda: kaldi(waves, cfg),
        "fbank_only": lambda: [fbank(w, cfg) for w in waves],
    }
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            times[name].append(median_seconds(fn, 1))
    t_ours, t_knf, t_fbank_only = (statistics.median(times[n]) for n in runs)
    diff = max(float(np.abs(fbank(w, cfg)[0].numpy() - k).max()) for w, k in zip(waves, kaldi(waves, cfg)))
    save(
        "features",
        {
            "utterances": len(waves),
            "audio_seconds": round(seconds, 1),
            "rtf_sse_dist_fbank_vad_cmn": t_ours / seconds,
            "rtf_sse_dist_fbank": t_fbank_only / seconds,
            "rtf_kaldi_native_fbank": t_knf / seconds,
            "speedup_fbank_vs_knf": t_knf / t_fbank_only,
            "speedup_fbank_vad_cmn_vs_knf": t_knf / t_ours,
            "max_abs_log_mel_difference": diff,
        },
    )


if __name__ == "__main__":
    main()
