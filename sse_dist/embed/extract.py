"""Embedding extraction over every fbank shard of one or more shard sets, in index order.

Three embedders share the reading code: a trained extractor (``model.pt``), the same architecture untrained
(the baseline a trained model must beat), and MFCC mean+std statistics (a no-training baseline).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import storage
from ..config import EmbedConfig, TrainConfig
from ..preprocess.features import apply_cmn, mfcc_from_fbank
from ..shard import format as fmt
from ..train.checkpoint import load_export
from ..train.data import FBANK, describe
from ..train.model import Extractor

log = logging.getLogger(__name__)
Embedder = Callable[[np.ndarray, np.ndarray], np.ndarray]


def utterances(roots: list[str]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(utterance id, raw log-mel [T, D], VAD mask [T]) for every utterance, each once."""
    for root in roots:
        for shard in fmt.read_index(root)["shards"]:
            for s in fmt.iter_tar(fmt.shard_url(root, FBANK, shard["name"])):
                where = f"{root} shard {shard['name']} key {s['__key__']}"
                meta = fmt.load_json(s["json"], where)
                feats = fmt.load_npy(s["fbank.npy"], where).astype(np.float32)
                yield meta.get("id") or s["__key__"], feats, fmt.load_npy(s["vad.npy"], where).astype(bool)


def extractor_embedder(extractor: Extractor, vad: bool, cmn_window: int, max_frames: int) -> Embedder:
    extractor.eval()

    @torch.no_grad()
    def embed(feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x = apply_cmn(torch.from_numpy(feats[mask] if vad else feats), cmn_window)
        if len(x) < 2 * Extractor.context + 1:
            x = torch.nn.functional.pad(x, (0, 0, 0, 2 * Extractor.context + 1 - len(x)), mode="replicate")
        # Long recordings are embedded in chunks and averaged, as Kaldi's nnet3-xvector-compute does.
        chunks = [x[i : i + max_frames] for i in range(0, len(x), max_frames)]
        chunks = [c for c in chunks if len(c) > 2 * Extractor.context] or chunks[:1]
        weights = torch.tensor([len(c) for c in chunks], dtype=torch.float32)
        embs = torch.cat([extractor(c[None]) for c in chunks])
        return ((embs * weights[:, None]).sum(0) / weights.sum()).numpy()

    return embed


def mfcc_stats_embedder(num_ceps: int) -> Embedder:
    def embed(feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
        ceps = mfcc_from_fbank(torch.from_numpy(feats[mask]), num_ceps)
        return torch.cat([ceps.mean(0), ceps.std(0, unbiased=False)]).numpy()

    return embed


def make_embedder(cfg: EmbedConfig, train: TrainConfig) -> tuple[Embedder, dict[str, Any]]:
    if cfg.method == "mfcc_stats":
        return mfcc_stats_embedder(cfg.num_ceps), {"method": "mfcc_stats", "num_ceps": cfg.num_ceps}
    if cfg.method == "random_init":
        from ..train.loop import build_model

        corpus = describe(cfg.shards, "")
        extractor = build_model(train, corpus, num_speakers=0).extractor
        data = train.data
        return extractor_embedder(extractor, data.vad, data.cmn_window, cfg.max_frames), {
            "method": "random_init",
            "seed": train.seed,
        }
    if not cfg.checkpoint:
        raise ValueError("embed.checkpoint: method=model needs the training run folder (or its model.pt)")
    blob = load_export(cfg.checkpoint)
    from ..config import ModelConfig, from_dict

    extractor = Extractor(blob["feat_dim"], from_dict(ModelConfig, blob["model"]))
    extractor.load_state_dict(blob["state_dict"])
    data = blob["data"]
    info = {"method": "model", "checkpoint": cfg.checkpoint, "step": blob["step"], "mode": blob["mode"]}
    return extractor_embedder(extractor, data["vad"], data["cmn_window"], cfg.max_frames), info


def run(cfg: EmbedConfig, train: TrainConfig | None = None) -> dict[str, Any]:
    if not cfg.shards or not cfg.output:
        raise ValueError("embed.shards and embed.output are required")
    embed, info = make_embedder(cfg, train or TrainConfig())
    total = sum(s["utterances"] for root in cfg.shards for s in fmt.read_index(root)["shards"])
    keys, embs = [], []
    for utt, feats, mask in tqdm(utterances(cfg.shards), total=total, desc=f"embed ({info['method']})"):
        if not mask.any():
            mask = np.ones_like(mask)
        keys.append(utt)
        embs.append(embed(feats, mask))
    if len(set(keys)) != len(keys):
        raise ValueError("embed: duplicate utterance ids across the shard sets; embed them separately")
    buf = io.BytesIO()
    np.savez(buf, keys=np.array(keys, dtype=str), embeddings=np.stack(embs).astype(np.float32))
    storage.write_bytes(cfg.output, buf.getvalue())
    summary = {
        **info,
        "utterances": len(keys),
        "indexed": total,
        "dim": int(embs[0].shape[0]),
        "output": cfg.output,
    }
    log.info("embedded %d utterances -> %s", len(keys), cfg.output)
    return summary
