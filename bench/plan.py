"""The cost model: what turning N hours of unlabelled audio into a trained encoder costs, end to end.

    python bench/plan.py [--hours 10000] [--nodes 4] [--gpus-per-node 8] [--config configs/demo.yaml]

Rates come from this machine's benchmark results (bench/results/*.json, written by the other bench scripts)
and are marked "measured"; what no benchmark here can measure (GPU speed without a GPU, a cluster's network) is
marked "assumed" with the assumption's value, so the arithmetic can be redone with better numbers
(--gpu-tflops, --mfu, --net-gbps, --cores-per-gpu).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from common import RESULTS

from sse_dist.config import ExperimentConfig, load

FRAMES_PER_HOUR = 360_000  # 10 ms hop
BYTES_PER_FRAME = {"fbank": 2 * 40, "vad": 1, "phones_hard": 1, "phones_soft": 2 * 40}


def measured(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def flops_per_frame(cfg) -> float:
    """Multiply-adds x 2 per frame through extractor and decoder, forward; training is ~3x forward."""
    m, d, p = cfg.model, 40, 40
    c, s, e, dc = m.channels, m.stats_channels, m.embed_dim, m.decoder_channels
    extractor = d * 5 * c + c * 3 * c * 2 + c * c + c * s
    decoder = (p + e) * m.decoder_kernel * dc + (m.decoder_layers - 1) * dc * m.decoder_kernel * dc + dc * d
    src, tgt = cfg.data.source_frames, cfg.data.target_frames
    return 2 * (extractor * src + decoder * tgt) / (src + tgt)


def row(what: str, value: str, basis: str) -> str:
    return f"| {what} | {value} | {basis} |"


def plan(args: argparse.Namespace) -> list[str]:
    cfg = load(ExperimentConfig, [args.config]).train
    h = args.hours
    shards = measured("shards")
    mb_per_hour = None
    if shards:
        w = shards["local"]["write"]
        mb_per_hour = w["mb"] / (w["mb"] / w["mb_per_s"] * w["audio_hours_per_s"])
    audio_gb = h * (mb_per_hour or 115.2) / 1e3  # 115.2 MB/h = 16 kHz 16-bit PCM
    n_shards = math.ceil(audio_gb * 1e3 / args.shard_mb)
    out = ["| quantity | value | basis |", "|---|---|---|"]
    out.append(
        row("audio", f"{audio_gb:,.0f} GB", "measured FLAC size per hour" if shards else "assumed PCM")
    )
    out.append(row(f"audio shards of {args.shard_mb} MB", f"{n_shards:,}", "derived"))
    prep = measured("preprocess")
    if prep:
        per_core = prep["runs"][0]["audio_hours_per_s"]
        core_h = h / per_core / 3600
        out.append(
            row("preprocessing (fbank + VAD + alignment phones)", f"{core_h:,.1f} core-hours", "measured")
        )
    feats_gb = h * FRAMES_PER_HOUR * (BYTES_PER_FRAME["fbank"] + BYTES_PER_FRAME["vad"]) / 1e9
    out.append(row("fbank + VAD field", f"{feats_gb:,.0f} GB ({feats_gb / h * 1e3:.1f} MB/h)", "format"))
    for kind in ("phones_hard", "phones_soft"):
        gb = h * FRAMES_PER_HOUR * BYTES_PER_FRAME[kind] / 1e9
        out.append(
            row(f"{kind.replace('_', ' ')} field", f"{gb:,.1f} GB ({gb / h * 1e3:.2f} MB/h)", "format")
        )
    gpus = args.nodes * args.gpus_per_node
    speech = args.speech_fraction
    frames_epoch = h * FRAMES_PER_HOUR * speech
    fpf = 3 * flops_per_frame(cfg)
    gpu_fps = args.gpu_tflops * 1e12 * args.mfu / fpf
    gpu_h = frames_epoch / gpu_fps / 3600
    out.append(row("training FLOPs per frame (fwd+bwd)", f"{fpf / 1e6:,.1f} MFLOP", "model arithmetic"))
    basis = f"assumed {args.gpu_tflops} TFLOP/s x MFU {args.mfu}"
    out.append(row("frames/s per GPU", f"{gpu_fps:,.0f}", basis))
    out.append(row("GPU-hours per epoch (every speech frame once)", f"{gpu_h:,.1f}", "derived"))
    out.append(
        row(
            f"wall-clock per epoch on {args.nodes}x{args.gpus_per_node} GPUs",
            f"{gpu_h / gpus:,.2f} h",
            "derived",
        )
    )
    train = measured("train")
    if train:
        cpu_fps = train["model_sizes"][0]["frames_per_s"]
        out.append(row("frames/s on this CPU (2 threads), for scale", f"{cpu_fps:,.0f}", "measured"))
    loader = measured("loader")
    if loader:
        best = max(loader["supply"], key=lambda r: r["batches_per_s"] / max(r["workers"], 1))
        b = loader["micro_batch"]
        frames_per_batch = b * (cfg.data.source_frames + cfg.data.target_frames)
        per_core = best["batches_per_s"] / max(best["workers"], 1) * frames_per_batch
        cores = gpu_fps / per_core
        out.append(row("loader frames/s per CPU core", f"{per_core:,.0f}", "measured"))
        out.append(row("loader cores needed per GPU", f"{cores:,.1f}", "derived"))
        verdict = "data pipeline" if cores > args.cores_per_gpu else "GPU"
        out.append(row(f"bottleneck at {args.cores_per_gpu} cores per GPU", verdict, "derived"))
    bytes_per_frame = BYTES_PER_FRAME["fbank"] + BYTES_PER_FRAME["vad"] + BYTES_PER_FRAME["phones_hard"]
    node_gbps = gpu_fps * args.gpus_per_node * bytes_per_frame * 8 / 1e9 / speech
    net = "network" if node_gbps > args.net_gbps else "not the network"
    out.append(row("shard read per node", f"{node_gbps:,.2f} Gbit/s", "derived"))
    out.append(row(f"bottleneck at {args.net_gbps} Gbit/s per node", net, f"assumed {args.net_gbps} Gbit/s"))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hours", type=float, default=10_000)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--shard-mb", type=float, default=1000)
    p.add_argument("--speech-fraction", type=float, default=0.8, help="share of frames the VAD keeps")
    p.add_argument(
        "--gpu-tflops", type=float, default=400.0, help="dense bf16 peak of one GPU (H100 SXM ~990)"
    )
    p.add_argument(
        "--mfu", type=float, default=0.2, help="achieved share of peak for these small convolutions"
    )
    p.add_argument("--cores-per-gpu", type=float, default=12)
    p.add_argument("--net-gbps", type=float, default=25)
    args = p.parse_args()
    print("\n".join(plan(args)))


if __name__ == "__main__":
    main()
