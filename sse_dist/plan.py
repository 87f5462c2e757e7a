"""The cost model: what N hours of unlabelled audio cost end to end, from the per-core rates this project's
benchmarks measure (``bench/results/*.json``) and stated assumptions for what no benchmark here can measure.
The sharding and preprocessing rates come from the growth rehearsal (``bench/growth.py``: the same commands at
1, 10 and 100 hours), fitted between its two largest sizes, so that a fixed cost paid once per job is not priced
as if it grew with the corpus.

    sse-dist plan [--hours 10000] [--config configs/xvector-large.yaml] [--nodes 4] [--gpu-speedup 1000] ...

Every figure carries its basis: ``measured`` (a benchmark result or a measured table in the docs), ``format``
(byte counts of the shard format), ``assumed`` (an argument: GPU speed, bandwidths, VAD share) or ``derived``
(arithmetic on the figures above it, inheriting their assumptions). The calculation is written out in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FRAMES_PER_HOUR = 360_000  # 10 ms hop
FEAT_DIM = 40
STORED_BYTES_PER_FRAME = FEAT_DIM * 2 + 1  # float16 log-mel + uint8 VAD
# Per phone source: core-seconds per audio hour (medians, docs/phones.md "Speed", bench/phone_speed.sh) and MB
# per audio hour of its field as stored (docs/phones.md "Storage": uint8 indices vs float16 posteriors).
PHONE_SOURCES = {
    "pocketsphinx (hard)": (161.0, 3.9),
    "neural (soft)": (20.7, 32.0),
    "kmeans (hard)": (1.2, 3.9),
}
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


@dataclass
class Rates:
    """Per-core rates, measured by the benchmarks (``bench/<script>.py`` writes ``bench/results/<script>.json``)."""

    fbank_rtf: float
    """Core-seconds per audio second of fbank + VAD + CMN (bench/features.py)."""
    audio_mb_per_hour: float
    """Stored FLAC audio shard, MB per audio hour (the rehearsal's largest shard set)."""
    shard_core_s_per_hour: float
    """Core-seconds per audio hour of `sse-dist shard`: decode, check, FLAC, tar (the rehearsal, fitted)."""
    preprocess_core_s_per_hour: float
    """Core-seconds per audio hour of the whole preprocessing job (driver, Ray and its workers: reading, fbank,
    VAD, k-means units, writing), beyond its fixed cost (the rehearsal, fitted)."""
    preprocess_fixed_core_s: float
    """Core-seconds a preprocessing job costs whatever its size: Ray and worker start-up (the rehearsal, the
    fit's intercept)."""
    rehearsal_hours: tuple[float, ...]
    """The corpus sizes the rehearsal ran (the two largest give the fitted rates)."""
    loader_pairs_per_core_s: float
    """Segment pairs per second that one loader worker supplies (bench/loader.py); its cost is per utterance,
    so a config with longer segments gets more frames from each pair."""
    train_frames_per_core_s: dict[str, float]
    """Training frames per second on one CPU core, per model config file name (bench/train.py)."""


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Cost per audio hour and fixed cost of a stage, from (audio hours, CPU seconds) at several sizes: the line
    through the two largest (one size: all of it per hour)."""
    (h1, c1), (h2, c2) = ([(0.0, 0.0)] + sorted(points))[-2:]
    rate = (c2 - c1) / (h2 - h1)
    return rate, max(c1 - rate * h1, 0.0)


def _rehearsal(growth: dict[str, Any]) -> dict[str, Any]:
    """The rehearsal's shard and preprocess rates (bench/growth.py)."""
    sizes = {float(k): v["stages"] for k, v in growth["sizes"].items()}
    missing = [k for k, st in sizes.items() if not {"shard train", "preprocess"} <= set(st)]
    if not sizes or missing:
        raise FileNotFoundError(
            f"growth.json: sizes {sorted(missing) or 'none'} lack shard or preprocess (run `python bench/growth.py`)"
        )
    points = {
        stage: [(st[stage]["audio_hours"], st[stage]["cpu_s"]) for st in sizes.values()]
        for stage in ("shard train", "preprocess")
    }
    largest = sizes[max(sizes)]["shard train"]
    shard_rate, _ = fit(points["shard train"])
    prep_rate, prep_fixed = fit(points["preprocess"])
    return {
        "audio_mb_per_hour": largest["disk_written_mb"] / largest["audio_hours"],
        "shard_core_s_per_hour": shard_rate,
        "preprocess_core_s_per_hour": prep_rate,
        "preprocess_fixed_core_s": prep_fixed,
        "rehearsal_hours": tuple(sorted(sizes)),
    }


def load_rates(results: Path = RESULTS) -> Rates:
    def read(name: str) -> dict[str, Any]:
        path = results / f"{name}.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no benchmark result (run `python bench/{name}.py`)")
        return json.loads(path.read_text())

    feats, growth, loader, train = (read(n) for n in ("features", "growth", "loader", "train"))
    one_worker = next(r for r in loader["supply"] if r["workers"] == 1)
    return Rates(
        fbank_rtf=feats["rtf_sse_dist_fbank_vad_cmn"],
        **_rehearsal(growth),
        loader_pairs_per_core_s=one_worker["batches_per_s"] * loader["micro_batch"],
        train_frames_per_core_s={Path(m["config"]).name: m["frames_per_s"] for m in train["model_sizes"]},
    )


@dataclass
class Scale:
    """The job and the cluster it runs on."""

    hours: float = 10_000
    """Hours of unlabelled audio."""
    config: str = "configs/xvector-large.yaml"
    """Experiment config whose model and segment sizes are trained (its frames/s must be measured)."""
    nodes: int = 4
    """Training nodes."""
    gpus_per_node: int = 8
    """GPUs (training ranks) per node."""
    loader_cores_per_gpu: float = 6
    """CPU cores per GPU left for the loader workers (64 cores per node, 8 GPUs, less the ranks' own)."""
    gpu_speedup: float = 1000
    """ASSUMED: training frames/s of one GPU over one core of the benchmark CPU (no GPU was measured)."""
    node_gbps: float = 25
    """ASSUMED: network bandwidth per node, Gbit/s, for shard reads and gradient all-reduce."""
    store_gbps: float = 200
    """ASSUMED: aggregate read bandwidth of the object store, Gbit/s."""
    speech_fraction: float = 0.8
    """ASSUMED: share of frames the VAD keeps (training frames per stored frame)."""
    utterance_seconds: float = 8.0
    """ASSUMED: mean utterance length; the loader reads a whole utterance for each segment pair it cuts."""
    shard_mb: float = 1000
    """Target size of one audio shard, MB."""
    grad_bytes: int = 2
    """Bytes per gradient value in the all-reduce (bf16)."""

    def validate(self) -> None:
        """Every size and rate positive (a share in (0, 1]): a zero or negative one gives a meaningless plan."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "config" and not value > 0:
                raise ValueError(f"--{f.name.replace('_', '-')}: must be > 0, got {value}")
        if self.speech_fraction > 1:
            raise ValueError(f"--speech-fraction: a share in (0, 1], got {self.speech_fraction}")


@dataclass
class Row:
    quantity: str
    value: float
    unit: str
    basis: str


def flops_per_frame(model: Any, source_frames: int, target_frames: int) -> float:
    """Forward FLOPs per training frame: 2 x multiply-adds of the extractor on the source frames and the decoder
    on the target frames; a training step is about 3x this."""
    c, s, e, dc, k = (
        model.channels,
        model.stats_channels,
        model.embed_dim,
        model.decoder_channels,
        model.decoder_kernel,
    )
    extractor = FEAT_DIM * 5 * c + c * 3 * c * 2 + c * c + c * s
    decoder = (FEAT_DIM + e) * k * dc + (model.decoder_layers - 1) * dc * k * dc + dc * FEAT_DIM
    return 2 * (extractor * source_frames + decoder * target_frames) / (source_frames + target_frames)


def train_settings(config: str) -> dict[str, float]:
    """Segment sizes, batch, parameters and FLOPs per frame of a config's model."""
    from .config import ExperimentConfig, load
    from .models.xvector import SpeakerEmbeddingModel

    cfg = load(ExperimentConfig, [config]).train
    model = SpeakerEmbeddingModel(cfg.model, FEAT_DIM, FEAT_DIM, 0, True)
    return {
        "frames_per_pair": cfg.data.source_frames + cfg.data.target_frames,
        "frames_per_step": cfg.deepspeed.micro_batch * (cfg.data.source_frames + cfg.data.target_frames),
        "steps": cfg.steps,
        "params": sum(p.numel() for p in model.parameters()),
        "flops_per_frame": 3 * flops_per_frame(cfg.model, cfg.data.source_frames, cfg.data.target_frames),
    }


def _storage(s: Scale, r: Rates) -> list[Row]:
    audio_gb = s.hours * r.audio_mb_per_hour / 1e3
    feats_gb = s.hours * FRAMES_PER_HOUR * STORED_BYTES_PER_FRAME / 1e9
    rows = [
        Row("audio shards (FLAC)", audio_gb, "GB", "measured MB/h x hours"),
        Row(
            f"audio shards of {s.shard_mb:g} MB", math.ceil(audio_gb * 1e3 / s.shard_mb), "shards", "derived"
        ),
        Row("fbank (float16) + VAD (uint8) field", feats_gb, "GB", "format"),
    ]
    for source, (_, mb_per_hour) in PHONE_SOURCES.items():
        rows.append(Row(f"phone field: {source}", s.hours * mb_per_hour / 1e3, "GB", "measured MB/h x hours"))
    return rows


def _preprocessing(s: Scale, r: Rates) -> list[Row]:
    rehearsal = f"rehearsal at {', '.join(f'{h:g}' for h in r.rehearsal_hours)} h"
    rows = [
        Row(
            "sharding (decode, check, FLAC, tar)",
            s.hours * r.shard_core_s_per_hour / 3600,
            "core-h",
            f"measured rate x hours ({rehearsal})",
        ),
        Row("fbank + VAD + CMN compute", s.hours * r.fbank_rtf, "core-h", "measured RTF x hours"),
        Row(
            "preprocessing job (driver, Ray, workers: I/O, fbank, VAD, k-means units)",
            s.hours * r.preprocess_core_s_per_hour / 3600,
            "core-h",
            f"measured rate x hours ({rehearsal})",
        ),
        Row("preprocessing job's fixed cost, once per job", r.preprocess_fixed_core_s, "core-s", rehearsal),
    ]
    for source, (core_s_per_hour, _) in PHONE_SOURCES.items():
        rows.append(
            Row(f"phones: {source}", s.hours * core_s_per_hour / 3600, "core-h", "measured (docs/phones.md)")
        )
    return rows


def _training(s: Scale, r: Rates, t: dict[str, float]) -> tuple[list[Row], dict[str, float]]:
    """Per-GPU frames/s from each limit (compute, loader cores, network), the slowest of them, and time."""
    cpu_fps = r.train_frames_per_core_s.get(Path(s.config).name)
    if cpu_fps is None:
        raise ValueError(f"{s.config}: no measured frames/s (run `python bench/train.py --sizes {s.config}`)")
    gpus = s.nodes * s.gpus_per_node
    gpu_fps = cpu_fps * s.gpu_speedup
    loader_core_fps = r.loader_pairs_per_core_s * t["frames_per_pair"]
    loader_fps = loader_core_fps * s.loader_cores_per_gpu
    # Through each node's network, per GPU frame: its GPUs' shard reads (the loader reads a whole utterance,
    # fbank + VAD + hard phones, for each pair it cuts), and the gradient all-reduce between nodes (a ring
    # moves ~2x the gradients through each node per step, whatever the node count; reduced within the node).
    utterance_frames = s.utterance_seconds * FRAMES_PER_HOUR / 3600
    read_bits_per_frame = utterance_frames * (STORED_BYTES_PER_FRAME + 1) * 8 / t["frames_per_pair"]
    grad_bits = 2 * t["params"] * s.grad_bytes * 8 if s.nodes > 1 else 0
    net_fps = s.node_gbps * 1e9 / (s.gpus_per_node * read_bits_per_frame + grad_bits / t["frames_per_step"])
    store_fps = s.store_gbps * 1e9 / read_bits_per_frame / gpus
    limits = {
        "GPU compute": gpu_fps,
        "data loader": loader_fps,
        "node network": net_fps,
        "object store": store_fps,
    }
    bottleneck = min(limits, key=limits.get)
    fps = limits[bottleneck]
    epoch_frames = s.hours * FRAMES_PER_HOUR * s.speech_fraction
    rows = [
        Row("training frames per epoch (speech frames)", epoch_frames, "frames", "assumed VAD share x hours"),
        Row(
            "training FLOPs per frame (forward + backward)",
            t["flops_per_frame"] / 1e6,
            "MFLOP",
            "model arithmetic",
        ),
        Row(f"frames/s on one CPU core ({s.config})", cpu_fps, "frames/s", "measured"),
        Row("frames/s per GPU, compute", gpu_fps, "frames/s", f"assumed {s.gpu_speedup:g}x one CPU core"),
        Row("  = effective GPU throughput", gpu_fps * t["flops_per_frame"] / 1e12, "TFLOP/s", "derived"),
        Row(
            "frames/s per GPU the loader supplies",
            loader_fps,
            "frames/s",
            f"measured x {s.loader_cores_per_gpu:g} cores",
        ),
        Row(
            "frames/s per GPU the node network carries",
            net_fps,
            "frames/s",
            f"assumed {s.node_gbps:g} Gbit/s",
        ),
        Row(
            "frames/s per GPU the object store serves",
            store_fps,
            "frames/s",
            f"assumed {s.store_gbps:g} Gbit/s",
        ),
        Row(f"bottleneck: {bottleneck}", fps, "frames/s", "derived: the slowest limit"),
        Row("GPU-hours per epoch", epoch_frames / fps / 3600, "GPU-h", "derived"),
        Row(
            f"wall-clock per epoch on {s.nodes} x {s.gpus_per_node} GPUs",
            epoch_frames / fps / 60 / gpus,
            "min",
            "derived",
        ),
        Row(
            f"GPU-hours of the config's run ({t['steps']:,.0f} steps of {t['frames_per_step']:,.0f} frames per GPU)",
            t["steps"] * t["frames_per_step"] / fps / 3600 * gpus,
            "GPU-h",
            "derived",
        ),
        Row("  = epochs", t["steps"] * t["frames_per_step"] * gpus / epoch_frames, "epochs", "derived"),
        Row("GPU speed-up beyond which the loader limits", loader_fps / cpu_fps, "x core", "derived"),
        Row("GPU speed-up beyond which the node network limits", net_fps / cpu_fps, "x core", "derived"),
        Row(
            "loader cores per GPU to keep up with compute",
            gpu_fps / loader_core_fps,
            "cores",
            "derived",
        ),
        Row(
            "nodes at which the object store limits",
            s.store_gbps * 1e9 / read_bits_per_frame / gpu_fps / s.gpus_per_node,
            "nodes",
            "derived",
        ),
    ]
    return rows, {"bottleneck_fps": fps, **limits}


def plan(s: Scale, r: Rates, t: dict[str, float] | None = None) -> dict[str, Any]:
    """Every row of the cost model, and the training limits (frames/s per GPU) by name."""
    t = t or train_settings(s.config)
    train_rows, limits = _training(s, r, t)
    rows = _storage(s, r) + _preprocessing(s, r) + train_rows
    bottleneck = next(row.quantity for row in train_rows if row.quantity.startswith("bottleneck"))
    return {"rows": rows, "limits": limits, "bottleneck": bottleneck.split(": ", 1)[1]}


def table(rows: list[Row]) -> str:
    lines = ["| quantity | value | unit | basis |", "|---|---:|---|---|"]
    for row in rows:
        value = f"{row.value:,.0f}" if abs(row.value) >= 100 else f"{row.value:,.3g}"
        lines.append(f"| {row.quantity} | {value} | {row.unit} | {row.basis} |")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .config import field_docs

    docs, types = field_docs(Scale), typing.get_type_hints(Scale)
    for f in dataclasses.fields(Scale):
        flag = f"--{f.name.replace('_', '-')}"
        p.add_argument(
            flag, type=types[f.name], default=f.default, help=f"{docs[f.name]} [default: {f.default!r}]"
        )
    p.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of benchmark results to read rates from"
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")


def run(args: argparse.Namespace) -> str:
    scale = Scale(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Scale)})
    scale.validate()
    result = plan(scale, load_rates(args.results))
    if args.json:
        return json.dumps(
            {
                "scale": dataclasses.asdict(scale),
                **result,
                "rows": [dataclasses.asdict(r) for r in result["rows"]],
            },
            indent=1,
        )
    return table(result["rows"])
