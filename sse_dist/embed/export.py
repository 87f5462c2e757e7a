"""The extractor with its frontend as one ONNX graph, so embeddings can be computed with ONNX Runtime alone.

The graph takes what a Kaldi recipe already has and applies what training applied:

* input ``fbank``: float32 [T, D], raw log-mel filterbank energies, Kaldi-compatible (``compute-fbank-feats``
  with the settings recorded in the file's ``sse_dist`` metadata: 25/10 ms frames, D mel bins, no energy,
  16-bit sample scale), *not* mean-normalised;
* input ``vad``: bool [T], the energy VAD decision per frame (Kaldi's ``compute-vad``); all true to keep
  every frame;
* output ``embedding``: float32 [E].

Inside: the voiced frames are kept (all frames if none is voiced, or if the model was trained without VAD),
mean-normalised as in training (whole-utterance or sliding window), repeated at the end up to the extractor's
least input length, then embedded. ``sse-dist embed`` runs this very frontend and extractor, except that it
averages the embeddings of 10,000-frame chunks of longer recordings (``embed.max_frames``), whereas the graph
embeds any length in one pass.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import storage
from ..frontend import apply_cmn
from ..models.xvector import Extractor

log = logging.getLogger(__name__)

INPUTS = ("fbank", "vad")
OUTPUT = "embedding"
_OPSET = 18


def frontend(feats: torch.Tensor, mask: torch.Tensor, vad: bool, cmn_window: int) -> torch.Tensor:
    """Raw log-mel [T, D] and VAD mask [T] -> the extractor's input [max(T', 15), D]."""
    if vad:
        feats = feats[mask | ~mask.any()]
    x = apply_cmn(feats, cmn_window)
    n = x.shape[0]
    # Repeat the last frame up to the frames the convolutions' context needs (a replicate pad without a branch
    # on the length, which the exported graph does not know until run time).
    return x[torch.arange(torch.sym_max(n, 2 * Extractor.context + 1)).clamp(max=n - 1)]


class EmbeddingGraph(nn.Module):
    """Frontend + extractor, the module that is exported."""

    def __init__(self, extractor: Extractor, vad: bool, cmn_window: int):
        super().__init__()
        self.extractor = extractor.eval()
        self.vad, self.cmn_window = vad, cmn_window

    def forward(self, fbank: torch.Tensor, vad: torch.Tensor) -> torch.Tensor:
        return self.extractor(frontend(fbank, vad, self.vad, self.cmn_window)[None])[0]


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    # The exporter reports each of its graph passes at INFO and warns about its own internals (deprecated
    # helpers, torchvision ops it skips); none of it is about the model.
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def to_onnx(graph: EmbeddingGraph, feat_dim: int, meta: dict[str, Any]) -> bytes:
    """The graph as a serialised ONNX model with a dynamic frame count; ``meta`` goes into its metadata."""
    example = (torch.zeros(200, feat_dim), torch.ones(200, dtype=torch.bool))
    frames = torch.export.Dim("frames", min=1)
    with _quiet_exporter():
        program = torch.onnx.export(
            graph,
            example,
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_shapes={"fbank": {0: frames}, "vad": {0: frames}},
            opset_version=_OPSET,
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    io_doc = {
        "fbank": f"float32 [T, {feat_dim}]: raw Kaldi-compatible log-mel (settings under 'features')",
        "vad": "bool [T]: energy VAD per frame (all true keeps every frame)",
        OUTPUT: "float32 [E]",
    }
    entry = model.metadata_props.add()
    entry.key, entry.value = "sse_dist", json.dumps({**meta, "io": io_doc}, sort_keys=True)
    return model.SerializeToString()


def onnx_embedder(model: bytes) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Embed with ONNX Runtime: a callable (fbank [T, D] float32, vad [T] bool) -> embedding [E]."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT warns about unused initialisers on every load
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def embed(feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT], {"fbank": feats.astype(np.float32), "vad": mask.astype(bool)})[0]

    return embed


def export(url: str, graph: EmbeddingGraph, feat_dim: int, meta: dict[str, Any]) -> bytes:
    """Write the ONNX model to ``url`` (local or object store); returns its bytes."""
    model = to_onnx(graph, feat_dim, meta)
    storage.write_bytes(url, model)
    log.info("exported the extractor with its frontend (%.1f MB) -> %s", len(model) / 1e6, url)
    return model
