"""Embedding extraction over every fbank shard of one or more shard sets, in index order, or over audio files
run through the trained model's own frontend (``audio.py``; the same embeddings as the shard route).

Three embedders share the reading code: a trained extractor (``model.pt``), the same architecture untrained
(the baseline a trained model must beat), and MFCC mean+std statistics (a no-training baseline). The output
holds each utterance's speaker too ("" where the shards do not know it), the labels a PLDA backend trains on.
An extractor can also be exported, with its frontend, as an ONNX graph (``export.py``), which is checked
against this stage's own embeddings before the stage reports success.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import storage
from ..config import (
    ConfigError,
    EmbedConfig,
    ShardConfig,
    TrainConfig,
    require_set,
    validate,
)
from ..frontend import mfcc_from_fbank
from ..models.xvector import build_extractor, load_extractor
from ..shard.fields import describe
from ..train import card
from .audio import audio_source, recorded_features
from .export import EmbeddingGraph, export, frontend, onnx_embedder
from .sources import Source, Utterance, shard_source

log = logging.getLogger(__name__)
Embedder = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Utterances on which an ONNX export is compared with this stage's embeddings.
_CHECKED = 8


def extractor_embedder(graph: EmbeddingGraph, max_frames: int) -> Embedder:
    @torch.no_grad()
    def embed(feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x = frontend(
            torch.from_numpy(feats),
            torch.from_numpy(mask),
            graph.vad,
            graph.cmn_window,
            graph.extractor.context,
        )
        # Long recordings are embedded in chunks and averaged, as Kaldi's nnet3-xvector-compute does.
        chunks = [x[i : i + max_frames] for i in range(0, len(x), max_frames)]
        chunks = [c for c in chunks if len(c) > 2 * graph.extractor.context] or chunks[:1]
        weights = torch.tensor([len(c) for c in chunks], dtype=torch.float32)
        embs = torch.cat([graph.extractor(c[None]) for c in chunks])
        return ((embs * weights[:, None]).sum(0) / weights.sum()).numpy()

    return embed


def mfcc_stats_embedder(num_ceps: int) -> Embedder:
    def embed(feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
        ceps = mfcc_from_fbank(torch.from_numpy(feats[mask]), num_ceps)
        return torch.cat([ceps.mean(0), ceps.std(0, unbiased=False)]).numpy()

    return embed


def extractor_graph(cfg: EmbedConfig, train: TrainConfig) -> tuple[EmbeddingGraph, dict[str, Any]]:
    """The extractor (trained, or untrained from ``train``'s seed) with its frontend, and what it is."""
    if cfg.method == "random_init":
        corpus = describe(cfg.shards, "")
        # Seeded as training seeds it, and built first there too: the extractor a run with this seed starts from.
        torch.manual_seed(train.seed)
        extractor = build_extractor(corpus.feat_dim, train.model)
        data = {"vad": train.data.vad, "cmn_window": train.data.cmn_window}
        info = {"method": "random_init", "seed": train.seed, "feat_dim": corpus.feat_dim}
        features = corpus.features
    else:
        if not cfg.checkpoint:
            raise ConfigError(
                "embed.checkpoint: method=model needs the training run folder (or its model.pt)"
            )
        extractor, blob = load_extractor(cfg.checkpoint)
        data, features = blob["data"], blob.get("features", {})
        info = {"method": "model", "checkpoint": cfg.checkpoint, "step": blob["step"], "mode": blob["mode"]}
        info["model"] = card.describe(cfg.checkpoint, card.read(cfg.checkpoint))
        log.info("model %s", info["model"])
        info["feat_dim"] = blob["feat_dim"]
    info |= {"frontend": data, "features": features}
    return EmbeddingGraph(extractor, data["vad"], data["cmn_window"]), info


def check_export(model: bytes, samples: list[Utterance], embs: list[np.ndarray]) -> float:
    """Largest difference between the ONNX graph's embeddings and this stage's on ``samples``."""
    embed = onnx_embedder(model)
    worst = max(float(np.abs(embed(u.feats, u.vad) - e).max()) for u, e in zip(samples, embs, strict=True))
    scale = max(float(np.abs(e).max()) for e in embs)
    if worst > 1e-3 * max(scale, 1.0):
        raise RuntimeError(
            f"the exported ONNX graph disagrees with the extractor by {worst:g} (scale {scale:g})"
        )
    return worst


def source(cfg: EmbedConfig, info: dict[str, Any], shard: ShardConfig) -> Source:
    if not cfg.audio:
        return shard_source(cfg.shards)
    return audio_source(cfg.audio, shard, recorded_features(cfg.checkpoint, info["features"]))


def write_quarantine(output: str, quarantine: list[dict[str, str]]) -> str:
    """``<output stem>.quarantine.jsonl``: one JSON line per utterance that could not be embedded."""
    url = (output[: -len(".npz")] if output.endswith(".npz") else output) + ".quarantine.jsonl"
    storage.write_bytes(url, "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in quarantine).encode())
    return url


def run(
    cfg: EmbedConfig, train: TrainConfig | None = None, shard: ShardConfig | None = None
) -> dict[str, Any]:
    """Embed ``cfg.shards`` or, with ``cfg.audio``, audio files (read with ``shard``'s duration limits)."""
    validate(cfg, "embed.")
    require_set(cfg, "embed", "output")
    if not (cfg.shards or cfg.audio):
        raise ConfigError("embed.shards: must be set (or embed.audio)")
    for url in filter(None, (cfg.output, cfg.onnx)):
        storage.check_output(url, folder=False)  # before the work, not after it
    if cfg.method == "mfcc_stats":
        graph, info = None, {"method": "mfcc_stats", "num_ceps": cfg.num_ceps}
        embed = mfcc_stats_embedder(cfg.num_ceps)
    else:
        graph, info = extractor_graph(cfg, train or TrainConfig())
        embed = extractor_embedder(graph, cfg.max_frames)
    utts = source(cfg, info, shard or ShardConfig())
    keys, speakers, embs, samples = [], [], [], []
    for utt in tqdm(utts.utterances, total=utts.input, desc=f"embed ({info['method']})"):
        keys.append(utt.id)
        speakers.append(utt.speaker)
        embs.append(embed(utt.feats, utt.vad if utt.vad.any() else np.ones_like(utt.vad)))
        if len(samples) < _CHECKED and len(utt.feats) <= cfg.max_frames:
            samples.append((utt, embs[-1]))
    if len(set(keys)) != len(keys):
        raise ValueError("embed: duplicate utterance ids across the shard sets; embed them separately")
    if utts.quarantine:
        log.warning("%d utterances could not be embedded -> %s", len(utts.quarantine),
                    write_quarantine(cfg.output, utts.quarantine))  # fmt: skip
    if cfg.audio and len(keys) + len(utts.quarantine) != utts.input:
        raise RuntimeError(
            f"lost utterances: {utts.input} in, {len(keys)} embedded, {len(utts.quarantine)} quarantined"
        )
    if not keys:
        raise ValueError(
            f"{cfg.audio or cfg.shards}: no utterance could be embedded (see the quarantine list)"
        )
    buf = io.BytesIO()
    np.savez(
        buf,
        keys=np.array(keys, dtype=str),
        speakers=np.array(speakers, dtype=str),
        embeddings=np.stack(embs).astype(np.float32),
    )
    storage.write_bytes(cfg.output, buf.getvalue())
    summary = {
        **info,
        "utterances": len(keys),
        **utts.counts,
        "labelled": sum(1 for s in speakers if s),
        "dim": int(embs[0].shape[0]),
        "output": cfg.output,
    }
    if cfg.audio:
        summary["quarantined"] = len(utts.quarantine)
    if cfg.onnx and graph is not None:
        model = export(cfg.onnx, graph, info["feat_dim"], {k: v for k, v in summary.items() if k != "output"})
        checked = check_export(model, [u for u, _ in samples], [e for _, e in samples])
        summary["onnx"] = {"path": cfg.onnx, "checked_utterances": len(samples), "max_abs_diff": checked}
    log.info("embedded %d utterances -> %s", len(keys), cfg.output)
    return summary
